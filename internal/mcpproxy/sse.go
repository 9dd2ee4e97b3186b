package mcpproxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
	"time"
)

// sseEvent is one server-sent event.
type sseEvent struct {
	ID    string
	Name  string
	Data  []byte
	Retry time.Duration
}

// writeSSE writes e in the text/event-stream format. Data holding newlines becomes
// several data lines, so a message is never split into two events.
func writeSSE(w io.Writer, e sseEvent) error {
	var b bytes.Buffer
	if e.Name != "" {
		b.WriteString("event: ")
		b.WriteString(e.Name)
		b.WriteByte('\n')
	}
	if e.ID != "" {
		b.WriteString("id: ")
		b.WriteString(e.ID)
		b.WriteByte('\n')
	}
	if e.Retry > 0 {
		b.WriteString("retry: ")
		b.WriteString(strconv.FormatInt(e.Retry.Milliseconds(), 10))
		b.WriteByte('\n')
	}
	data := e.Data
	for {
		b.WriteString("data: ")
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			b.Write(bytes.TrimSuffix(data, []byte("\r")))
			b.WriteByte('\n')
			break
		}
		b.Write(bytes.TrimSuffix(data[:i], []byte("\r")))
		b.WriteByte('\n')
		data = data[i+1:]
	}
	b.WriteByte('\n')
	_, err := w.Write(b.Bytes())
	return err
}

// errEventTooLarge is returned by sseReader when an event exceeds its limit.
var errEventTooLarge = errors.New("server-sent event larger than the limit")

// sseReader reads server-sent events, as the WHATWG spec parses them.
type sseReader struct {
	r   *bufio.Reader
	max int
	// LastID is the id of the last event read (the resumption point).
	LastID string
}

func newSSEReader(r io.Reader, max int) *sseReader {
	return &sseReader{r: bufio.NewReaderSize(r, 64<<10), max: max}
}

// Next returns the next event with data, or io.EOF when the stream ended cleanly.
// Events without data (priming events, keep-alives) update LastID and are skipped,
// except that an event carrying only a retry is reported too.
func (s *sseReader) Next() (sseEvent, error) {
	var e sseEvent
	var data bytes.Buffer
	hasData := false
	size := 0
	for {
		line, err := s.readLine(&size)
		if err != nil {
			if err == io.EOF && (hasData || e.ID != "") {
				err = io.ErrUnexpectedEOF
			}
			return sseEvent{}, err
		}
		if len(line) == 0 { // dispatch
			if hasData {
				e.Data = bytes.Clone(data.Bytes())
				return e, nil
			}
			if e.Retry > 0 {
				return e, nil
			}
			e, hasData, size = sseEvent{}, false, 0
			data.Reset()
			continue
		}
		if line[0] == ':' {
			continue // comment
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "event":
			e.Name = string(value)
		case "data":
			if hasData {
				data.WriteByte('\n')
			}
			data.Write(value)
			hasData = true
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				e.ID = string(value)
				s.LastID = e.ID
			}
		case "retry":
			if ms, err := strconv.ParseInt(string(value), 10, 64); err == nil && ms >= 0 {
				e.Retry = time.Duration(ms) * time.Millisecond
			}
		}
	}
}

// readLine reads one line without its terminator (LF, CRLF or CR-less), counting
// its bytes against the event size limit.
func (s *sseReader) readLine(size *int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := s.r.ReadSlice('\n')
		*size += len(chunk)
		if s.max > 0 && *size > s.max {
			return nil, errEventTooLarge
		}
		line = append(line, chunk...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if err == io.EOF && len(line) > 0 {
				return bytes.TrimRight(line, "\r\n"), nil
			}
			return nil, err
		}
		return bytes.TrimRight(line, "\r\n"), nil
	}
}
