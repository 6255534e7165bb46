// Package notify delivers alert and monitoring-health events to the
// outside world: signed webhooks over HTTPS and e-mail over SMTP with
// STARTTLS. It sends one message; retries, backoff and the delivery log
// belong to the caller (the alert package's outbox).
package notify

import "errors"

// PermanentError marks a failure that retrying cannot fix (a webhook URL
// the hub refuses to call, a recipient the mail server rejects for good).
// The outbox stops retrying such a delivery.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err as a PermanentError; nil stays nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// IsPermanent reports whether err, or an error it wraps, is permanent.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}
