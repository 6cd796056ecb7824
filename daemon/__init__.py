"""The line-side inspection daemon: pipeline, capture and publishing. Never imports TensorFlow."""
