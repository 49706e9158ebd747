"""Flow table simulation drivers and benchmark."""
