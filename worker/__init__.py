"""Worker assembly, the connection to Temporal, the embedded dev server, worker logging."""
