package httpapi

// registerBackups registers the operations on the Backups tab, restores, notifications and templates.
func registerBackups(add adder, h *handlers) {}
