"""Model intake: bundles stored, vetted (self-test), watched for and swapped in between frames."""
