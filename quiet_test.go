package dataguardian_test

import (
	"io"
	"log/slog"
)

// quiet keeps examples' output to what they print.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))
