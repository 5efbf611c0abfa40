"""Resource requests: GPUs, data budget and talent support, sealed per field."""
