package fakeprovider

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestScript(t *testing.T) {
	sc := scriptFor(`call tool a with {"x": 1} then call tool b.c with {"y":"z"} and call tool d with nothing`, false)
	if len(sc.calls) != 3 || sc.calls[0] != (toolCall{"a", `{"x":1}`}) || sc.calls[1] != (toolCall{"b.c", `{"y":"z"}`}) || sc.calls[2] != (toolCall{"d", `{}`}) {
		t.Errorf("calls %+v", sc.calls)
	}
	if sc := scriptFor("please error 429 and slow 300ms", false); sc.status != 429 || sc.delay != 300*time.Millisecond {
		t.Errorf("script %+v", sc)
	}
	if sc := scriptFor("error 500", true); sc.status != 0 || sc.reply != "Tool result: error 500" {
		t.Errorf("a tool result is echoed, not scripted: %+v", sc)
	}
	got := chunks("héllo wörld", 2)
	if strings.Join(got, "") != "héllo wörld" || len(got) != 6 {
		t.Errorf("chunks %q", got)
	}
	for _, c := range got {
		if !utf8.ValidString(c) {
			t.Errorf("chunk %q splits a rune", c)
		}
	}
}
