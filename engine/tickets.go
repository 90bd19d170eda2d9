package engine

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ErrInvalidTicket reports a download ticket that is malformed, was not
// made by this server's secret key, names another backup, or expired.
var ErrInvalidTicket = errors.New("invalid download ticket")

// ticketPurpose marks what a sealed ticket is for, so that nothing else
// the sealer seals is ever taken for one.
const ticketPurpose = "download"

type ticket struct {
	Purpose   string `json:"p"`
	Execution string `json:"x"`
	Holder    string `json:"h,omitempty"`
	Expires   int64  `json:"e"` // Unix seconds
}

// DownloadTicket returns a ticket that lets whoever presents it download
// the backup executionID until ttl has passed, and when it expires. A
// browser cannot send an Authorization header with a plain link, so the
// API hands out such a ticket to a caller allowed to download, to put in
// the link's query. holder names who asked (an API token's ID, or ""),
// so that CheckDownloadTicket's caller can refuse a ticket whose holder
// lost the right since. The ticket is sealed with the server's secret key
// (any process sharing the key accepts it), carries no secret, and says
// nothing readable about the backup. An execution that is not a completed
// backup gives an error matching ErrNotFound or ErrNotRestorable.
func (e *Engine) DownloadTicket(ctx context.Context, executionID, holder string, ttl time.Duration) (string, time.Time, error) {
	if _, err := e.completedBackup(ctx, executionID); err != nil {
		return "", time.Time{}, fmt.Errorf("download ticket for %s: %w", executionID, err)
	}
	expires := e.now().Add(ttl).Truncate(time.Second)
	plain, err := json.Marshal(ticket{Purpose: ticketPurpose, Execution: executionID, Holder: holder, Expires: expires.Unix()})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("download ticket: %w", err)
	}
	sealed, err := e.sealer.Seal(plain)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("download ticket: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(sealed), expires, nil
}

// CheckDownloadTicket returns the holder of ticket if it is a ticket of
// DownloadTicket for executionID that has not expired, or an error
// matching ErrInvalidTicket saying which it is not.
func (e *Engine) CheckDownloadTicket(tk, executionID string) (holder string, err error) {
	sealed, err := base64.RawURLEncoding.DecodeString(tk)
	if err != nil {
		return "", fmt.Errorf("%w: not base64url", ErrInvalidTicket)
	}
	plain, err := e.sealer.Open(sealed)
	if err != nil {
		return "", fmt.Errorf("%w: not sealed by this server's secret key", ErrInvalidTicket)
	}
	var t ticket
	if err := json.Unmarshal(plain, &t); err != nil || t.Purpose != ticketPurpose {
		return "", fmt.Errorf("%w: not a download ticket", ErrInvalidTicket)
	}
	if t.Execution != executionID {
		return "", fmt.Errorf("%w: it is for another backup", ErrInvalidTicket)
	}
	if !e.now().Before(time.Unix(t.Expires, 0)) {
		return "", fmt.Errorf("%w: it expired at %s; ask for a new download link", ErrInvalidTicket,
			time.Unix(t.Expires, 0).UTC().Format(time.RFC3339))
	}
	return t.Holder, nil
}
