package llmproxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/vigil-gateway/vigil/internal/vigil"
	"github.com/vigil-gateway/vigil/internal/web"
)

// openAITypes maps error codes to the "type" OpenAI's API uses, which the SDKs turn
// into their exception classes.
var openAITypes = map[vigil.Code]string{
	vigil.EINVALID:      "invalid_request_error",
	vigil.ETOOLARGE:     "invalid_request_error",
	vigil.EMETHOD:       "invalid_request_error",
	vigil.EUNAUTHORIZED: "authentication_error",
	vigil.EFORBIDDEN:    "permission_error",
	vigil.ESUSPENDED:    "permission_error",
	vigil.EDENIED:       "permission_error",
	vigil.ENOTFOUND:     "not_found_error",
	vigil.ELIMIT:        "rate_limit_error",
	vigil.ECONFLICT:     "invalid_request_error",
	vigil.EUNAVAILABLE:  "api_error",
	vigil.EUPSTREAM:     "api_error",
	vigil.ETIMEOUT:      "api_error",
	vigil.EINTERNAL:     "api_error",
}

// anthropicTypes maps error codes to Anthropic's error types.
var anthropicTypes = map[vigil.Code]string{
	vigil.EINVALID:      "invalid_request_error",
	vigil.ETOOLARGE:     "request_too_large",
	vigil.EMETHOD:       "invalid_request_error",
	vigil.EUNAUTHORIZED: "authentication_error",
	vigil.EFORBIDDEN:    "permission_error",
	vigil.ESUSPENDED:    "permission_error",
	vigil.EDENIED:       "permission_error",
	vigil.ENOTFOUND:     "not_found_error",
	vigil.ELIMIT:        "rate_limit_error",
	vigil.ECONFLICT:     "invalid_request_error",
	vigil.EUNAVAILABLE:  "overloaded_error",
	vigil.EUPSTREAM:     "api_error",
	vigil.ETIMEOUT:      "api_error",
	vigil.EINTERNAL:     "api_error",
}

func safeMessage(err error) string {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return fmt.Sprintf("request body is larger than the limit of %d bytes", mbe.Limit)
	}
	return vigil.ErrorMessage(err)
}

// OpenAIError is OpenAI's error body.
type OpenAIError struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    string  `json:"code"`
	} `json:"error"`
}

// RenderOpenAIError writes err in OpenAI's shape: {"error":{"message","type","param","code"}}.
func RenderOpenAIError(w http.ResponseWriter, r *http.Request, status int, err error) {
	var body OpenAIError
	code := vigil.ErrorCode(err)
	body.Error.Message = safeMessage(err)
	body.Error.Type = openAITypes[code]
	if body.Error.Type == "" {
		body.Error.Type = "api_error"
	}
	body.Error.Code = string(code)
	if errors.As(err, new(*http.MaxBytesError)) {
		body.Error.Code = string(vigil.ETOOLARGE)
	}
	writeError(w, r, status, body)
}

// AnthropicError is Anthropic's error body.
type AnthropicError struct {
	Type  string `json:"type"`
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

// RenderAnthropicError writes err in Anthropic's shape: {"type":"error","error":{"type","message"}}.
func RenderAnthropicError(w http.ResponseWriter, r *http.Request, status int, err error) {
	body := AnthropicError{Type: "error"}
	body.Error.Type = anthropicTypes[vigil.ErrorCode(err)]
	if body.Error.Type == "" {
		body.Error.Type = "api_error"
	}
	body.Error.Message = safeMessage(err)
	writeError(w, r, status, body)
}

func writeError(w http.ResponseWriter, r *http.Request, status int, body any) {
	if id := web.RequestID(r.Context()); id != "" {
		w.Header().Set("X-Request-Id", id)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
