"""The pure core: stages over arrays (preprocess, anomaly map, denoise, regions, ROI, score,
verdict) and the pipeline that composes them. No I/O, no threads, no globals."""
