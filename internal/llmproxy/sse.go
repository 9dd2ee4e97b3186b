package llmproxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// MaxEventBytes caps one server-sent event; a provider that sends a larger one is
// cut off rather than allowed to grow Vigil's memory without bound.
const MaxEventBytes = 16 << 20

// Event is one server-sent event (https://html.spec.whatwg.org/#server-sent-events).
type Event struct {
	// Name is the "event:" field, empty for the default "message".
	Name string
	// Data is the "data:" lines joined with "\n".
	Data []byte
	// Raw is the event exactly as received, including its terminating blank line, so
	// an event Vigil doesn't change is passed on byte for byte. Nil for events Vigil
	// makes.
	Raw []byte
}

// IsComment reports whether the event carries only comments (keep-alives).
func (e *Event) IsComment() bool { return e.Name == "" && e.Data == nil }

// AppendTo appends the event's wire form: Raw when set, else its fields.
func (e *Event) AppendTo(b []byte) []byte {
	if e.Raw != nil {
		return append(b, e.Raw...)
	}
	return appendEvent(b, e.Name, e.Data)
}

// appendEvent writes an event with the given name and data; data with newlines
// becomes several data lines.
func appendEvent(b []byte, name string, data []byte) []byte {
	if name != "" {
		b = append(b, "event: "...)
		b = append(b, name...)
		b = append(b, '\n')
	}
	for {
		i := bytes.IndexByte(data, '\n')
		b = append(b, "data: "...)
		if i < 0 {
			b = append(b, data...)
			b = append(b, '\n')
			break
		}
		b = append(b, data[:i]...)
		b = append(b, '\n')
		data = data[i+1:]
	}
	return append(b, '\n')
}

// SSEReader reads server-sent events from a stream. Lines end with "\n" or "\r\n"
// (every provider's choice); a bare "\r" is not taken as a line end.
type SSEReader struct {
	r   *bufio.Reader
	raw []byte
	// err is the error that ended the stream, returned from then on.
	err error
}

// NewSSEReader returns a reader of the events in r.
func NewSSEReader(r io.Reader) *SSEReader {
	return &SSEReader{r: bufio.NewReaderSize(r, 32<<10)}
}

var errEventTooLarge = fmt.Errorf("server-sent event larger than %d bytes", MaxEventBytes)

// Next returns the next event. Its Data and Raw are valid until the next call. At
// the end of the stream it returns io.EOF; a last event without its blank line is
// still returned first (providers that close right after the final data line).
func (s *SSEReader) Next() (Event, error) {
	if s.err != nil {
		return Event{}, s.err
	}
	s.raw = s.raw[:0]
	var ev Event
	var data []byte
	hasData := false
	for {
		line, err := s.r.ReadSlice('\n')
		for errors.Is(err, bufio.ErrBufferFull) {
			s.raw = append(s.raw, line...)
			if len(s.raw) > MaxEventBytes {
				s.err = errEventTooLarge
				return Event{}, s.err
			}
			line, err = s.r.ReadSlice('\n')
		}
		start := len(s.raw)
		s.raw = append(s.raw, line...)
		if len(s.raw) > MaxEventBytes {
			s.err = errEventTooLarge
			return Event{}, s.err
		}
		line = s.raw[lineStart(s.raw, start):]
		if err != nil {
			if err == io.EOF && len(bytes.TrimSpace(s.raw)) > 0 {
				// The stream ended without the final blank line: deliver what we have,
				// completed with the missing line ends so it can be passed on as is.
				s.err = io.EOF
				ls := lineStart(s.raw, start)
				if len(line) > 0 {
					s.raw = append(s.raw, '\n')
					l := trimEOL(s.raw[ls:])
					s.parseLine(l, &ev, &data, &hasData)
					if len(l) > 0 {
						s.raw = append(s.raw, '\n')
					}
				} else {
					s.raw = append(s.raw, '\n')
				}
				ev.Raw = s.raw
				if hasData {
					ev.Data = data
				}
				return ev, nil
			}
			s.err = err
			return Event{}, err
		}
		l := trimEOL(line)
		if len(l) == 0 {
			if len(s.raw) == len(line) {
				// A blank line with nothing before it: skip stray separators.
				s.raw = s.raw[:0]
				continue
			}
			ev.Raw = s.raw
			if hasData {
				ev.Data = data
			}
			return ev, nil
		}
		s.parseLine(l, &ev, &data, &hasData)
	}
}

// lineStart finds where the line appended at start began, accounting for a line
// split over several buffer-sized reads.
func lineStart(raw []byte, start int) int {
	if i := bytes.LastIndexByte(raw[:start], '\n'); i >= 0 {
		return i + 1
	}
	return 0
}

func trimEOL(l []byte) []byte {
	l = bytes.TrimSuffix(l, []byte("\n"))
	return bytes.TrimSuffix(l, []byte("\r"))
}

func (s *SSEReader) parseLine(l []byte, ev *Event, data *[]byte, hasData *bool) {
	if len(l) == 0 || l[0] == ':' {
		return
	}
	field, value, _ := bytes.Cut(l, []byte(":"))
	value = bytes.TrimPrefix(value, []byte(" "))
	switch string(field) {
	case "event":
		ev.Name = string(value)
	case "data":
		if *hasData {
			*data = append(*data, '\n')
		}
		*data = append(*data, value...)
		*hasData = true
	}
}
