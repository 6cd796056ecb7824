"""The features family (the default): the pretrained int8 backbone, cut to the feature maps in
use, and a head fitted on good parts' features (heads.py lists them)."""
