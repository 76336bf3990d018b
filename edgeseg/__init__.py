"""edgeseg: semantic segmentation from laptop to embedded hardware."""

__version__ = "0.1.0"
