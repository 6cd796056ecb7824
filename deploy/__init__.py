"""The bundle format shared by the trainer and the box: manifest, packing and reading.

Nothing here imports TensorFlow or OpenCV, so both sides can use it.
"""
