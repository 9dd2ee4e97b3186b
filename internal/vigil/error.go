package vigil

import (
	"errors"
	"fmt"
)

// Code classifies an error for every surface: the admin API maps it to an HTTP status,
// the OpenAI and Anthropic adapters to their error types, MCP to a JSON-RPC code.
type Code string

// The error codes.
const (
	ECONFLICT     Code = "conflict"           // already exists, or changed underneath
	EINTERNAL     Code = "internal"           // a bug or an infrastructure failure; details only in logs
	EINVALID      Code = "invalid_request"    // the caller sent something malformed or out of range
	ENOTFOUND     Code = "not_found"          // no such thing (or not visible to this caller)
	EUNAUTHORIZED Code = "unauthenticated"    // no credentials, or wrong ones
	EFORBIDDEN    Code = "forbidden"          // authenticated, but not allowed (role, scope)
	ESUSPENDED    Code = "agent_suspended"    // the kill switch is on for this agent or system
	EDENIED       Code = "policy_denied"      // policy said no
	ELIMIT        Code = "limit_reached"      // a rate limit or budget
	ETOOLARGE     Code = "payload_too_large"  // body over the configured limit
	EMETHOD       Code = "method_not_allowed" // route exists, method does not
	EUNAVAILABLE  Code = "unavailable"        // a dependency is down; try again later
	EUPSTREAM     Code = "upstream_error"     // the provider or MCP server failed
	ETIMEOUT      Code = "timeout"            // waited too long (approval, upstream)
)

// Error is an error whose Message is safe to show to the caller. Anything that is not
// an *Error reaching a surface is reported as an internal error and only logged.
type Error struct {
	Code    Code
	Message string
	// Err is the underlying cause, for logs; never shown to callers.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with a caller-safe message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, or EINTERNAL.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the caller-safe message of err, or "internal error".
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// Sentinels that callers branch on; check with errors.Is. Stores wrap them in an
// *Error so the message stays caller-safe.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
)

// NotFound returns a caller-safe not-found error that also matches ErrNotFound.
func NotFound(format string, args ...any) error {
	return &Error{Code: ENOTFOUND, Message: fmt.Sprintf(format, args...), Err: ErrNotFound}
}

// Conflict returns a caller-safe conflict error that also matches ErrConflict.
func Conflict(format string, args ...any) error {
	return &Error{Code: ECONFLICT, Message: fmt.Sprintf(format, args...), Err: ErrConflict}
}
