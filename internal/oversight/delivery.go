package oversight

import (
	"context"
	"time"
)

// Delivery is one attempt to deliver a notification about a request to a webhook.
// Every attempt is kept, failed or not, so operators can see what reached whom.
type Delivery struct {
	ID string `json:"id"`
	// Webhook names the receiver (its configured name, or its host): never the URL,
	// which can hold a secret (Slack's do).
	Webhook    string `json:"webhook"`
	Event      string `json:"event"`
	ApprovalID string `json:"approval_id"`
	// Attempt counts from 1.
	Attempt int `json:"attempt"`
	// Status is the receiver's HTTP status, or 0 when there was no answer.
	Status   int           `json:"status"`
	Error    string        `json:"error,omitempty"`
	At       time.Time     `json:"at"`
	Duration time.Duration `json:"duration_ns"`
}

// DeliveryStore keeps webhook delivery attempts. Implementations MUST be safe for
// concurrent use.
type DeliveryStore interface {
	RecordDelivery(ctx context.Context, d Delivery) error
	// ListDeliveries returns attempts newest first: those about one request when
	// approvalID is not "", else all; at most limit (0 means 100).
	ListDeliveries(ctx context.Context, approvalID string, limit int) ([]Delivery, error)
}
