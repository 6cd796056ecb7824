"""The off-device trainer: synthetic data, training, int8 export, calibration, bundles."""
