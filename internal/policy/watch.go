package policy

import (
	"context"
	"fmt"
	"os"
	"time"
)

// DefaultWatchInterval is how often Watch looks at the policy file by default.
const DefaultWatchInterval = 2 * time.Second

// WatchOptions configure Engine.Watch.
type WatchOptions struct {
	// Path is the policy file.
	Path string
	// Interval is how often the file is looked at. Default DefaultWatchInterval.
	Interval time.Duration
	// By is the actor recorded as activating a changed file. Default
	// "system:policy-watch".
	By string
	// OnActivate, if set, is called after a changed file was activated.
	OnActivate func(*Policy)
	// OnError, if set, is called when a changed file could not be read, compiled or
	// activated; the live policy stays. It is called once per distinct content, not
	// on every poll.
	OnError func(error)
}

// Watch polls the policy file and activates it whenever its content changes and
// compiles, until ctx is done; it then returns nil. A change is noticed by the file's
// modification time or size, then confirmed by its hash, so touching a file does
// nothing; and it is acted on only once the content has stayed the same for one
// interval, so a file caught half-written (an editor or os.WriteFile truncates, then
// writes) is neither activated — a truncated policy may compile, and allow more —
// nor reported as broken. Run it in its own goroutine.
func (e *Engine) Watch(ctx context.Context, o WatchOptions) error {
	if o.Interval <= 0 {
		o.Interval = DefaultWatchInterval
	}
	if o.By == "" {
		o.By = "system:policy-watch"
	}
	// The first poll reads the file whatever its time, and compares its hash with the
	// live policy's: it may have changed since the live one was loaded.
	w := watcher{e: e, o: o, size: -1}
	if p := e.Policy(); p != nil {
		w.seen = p.version
	}
	t := time.NewTicker(o.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			w.poll(ctx)
		}
	}
}

type watcher struct {
	e       *Engine
	o       WatchOptions
	mtime   time.Time
	size    int64
	seen    string // version of the content last acted on
	pending string // version of changed content waiting to be seen unchanged once more
	lastErr string // the last error reported, so a lasting problem is reported once
}

func (w *watcher) fail(err error) {
	if err.Error() == w.lastErr {
		return
	}
	w.lastErr = err.Error()
	if w.o.OnError != nil {
		w.o.OnError(err)
	}
}

func (w *watcher) poll(ctx context.Context) {
	fi, err := os.Stat(w.o.Path)
	if err != nil {
		w.fail(fmt.Errorf("couldn't read policy; keeping the live one: %w", err))
		return
	}
	if fi.ModTime().Equal(w.mtime) && fi.Size() == w.size && w.pending == "" {
		return
	}
	b, err := os.ReadFile(w.o.Path)
	if err != nil {
		w.fail(fmt.Errorf("couldn't read policy; keeping the live one: %w", err))
		return
	}
	w.mtime, w.size = fi.ModTime(), fi.Size()
	v := Version(b)
	if v == w.seen {
		w.pending = ""
		return
	}
	if v != w.pending {
		w.pending = v // changed: act when the next poll finds the same content
		return
	}
	w.pending = ""
	w.seen = v
	if live := w.e.Policy(); live != nil && live.version == v {
		return
	}
	p, err := Compile(w.o.Path, b)
	if err != nil {
		w.fail(fmt.Errorf("policy %s changed but doesn't compile; keeping the live one:\n%w", w.o.Path, err))
		return
	}
	if err := w.e.Activate(ctx, p, w.o.By); err != nil {
		// Try again on the next polls: recording may work then.
		w.seen, w.size = "", -1
		w.fail(err)
		return
	}
	w.lastErr = ""
	if w.o.OnActivate != nil {
		w.o.OnActivate(p)
	}
}
