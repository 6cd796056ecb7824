"""The pixel family: convolutional autoencoders of the frame's pixels, trained on good images."""
