package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/vigil-gateway/vigil/internal/oversight"
)

// heartbeat is how often an idle live stream sends a comment (keeping proxies from
// closing it) and re-checks that its session is still valid.
const heartbeat = 15 * time.Second

// events streams what changes as server-sent events: "approval" events
// ({"kind","id"}) when a request is raised, voted on, decided, expired or cancelled,
// and "killswitch" events when an agent, a system or everything is stopped or
// resumed. The page re-fetches what an event names; events carry no content.
func (c *Console) events(w http.ResponseWriter, r *http.Request) error {
	rc := http.NewResponseController(w)
	notices, cancel := c.opts.Approvals.Subscribe()
	defer cancel()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 2000\n\n")
	if err := rc.Flush(); err != nil {
		return nil
	}
	secret := current(r).secret
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-c.closed:
			return nil
		case <-tick.C:
			if _, err := c.opts.Users.Authenticate(r.Context(), secret); err != nil {
				fmt.Fprint(w, "event: signedout\ndata: {}\n\n")
				_ = rc.Flush()
				return nil
			}
			fmt.Fprint(w, ": ping\n\n")
		case n, ok := <-notices:
			if !ok {
				return nil
			}
			event := "approval"
			switch n.Kind {
			case oversight.NoticeSuspended, oversight.NoticeResumed, oversight.NoticeHalted, oversight.NoticeUnhalted, oversight.NoticeResync:
				event = "killswitch"
			}
			data, _ := json.Marshal(struct {
				Kind oversight.NoticeKind `json:"kind"`
				ID   string               `json:"id,omitempty"`
			}{n.Kind, n.ID})
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, data)
		}
		if err := rc.Flush(); err != nil {
			return nil
		}
	}
}
