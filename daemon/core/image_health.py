"""Cheap measures of what a camera delivers: brightness, contrast and sharpness of a frame.

A lamp that ages darkens the frames, a dirty or knocked lens blurs them; these move before the
anomaly scores do. Measured on a grey copy at most `WIDTH` pixels wide, so the cost does not
grow with the camera's resolution (about 0.2 ms).
"""

from __future__ import annotations

import cv2
import numpy as np

WIDTH = 256
MEASURES = ("brightness", "contrast", "sharpness")


def measure(image: np.ndarray) -> dict[str, float]:
    """brightness: mean grey level (0-255); contrast: their standard deviation; sharpness: the
    variance of the Laplacian."""
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    h, w = grey.shape
    if w > WIDTH:
        grey = cv2.resize(grey, (WIDTH, max(1, round(h * WIDTH / w))), interpolation=cv2.INTER_AREA)
    mean, std = cv2.meanStdDev(grey)
    laplacian = cv2.Laplacian(grey, cv2.CV_32F)
    return {
        "brightness": float(mean[0, 0]),
        "contrast": float(std[0, 0]),
        "sharpness": float(laplacian.var()),
    }
