package strictjson

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

type layer struct {
	Type string  `json:"type"`
	In   int     `json:"in,omitempty"`
	Eps  float64 `json:"eps,omitempty"`
	Skip string  `json:"-"`
}

type doc struct {
	Shape  []int             `json:"input_shape"`
	Layers []layer           `json:"layers"`
	Extra  map[string]any    `json:"extra,omitempty"`
	Tags   map[string]*layer `json:"tags,omitempty"`
}

// TestDecodeAccepts: a valid document, with white space around it, decodes
// as encoding/json would.
func TestDecodeAccepts(t *testing.T) {
	var d doc
	in := "\n  {\"input_shape\": [4],\n \"layers\": [{\"type\": \"relu\", \"in\": 3, \"eps\": 1e-5}],\n \"extra\": {\"Anything\": {\"goes\": [[1, {\"x\": null}], true]}}, \"tags\": {\"x\": {\"type\": \"tanh\"}}}\n\n"
	if err := Decode([]byte(in), &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Layers) != 1 || d.Layers[0].Type != "relu" || d.Layers[0].In != 3 || d.Layers[0].Eps != 1e-5 || d.Tags["x"].Type != "tanh" {
		t.Fatalf("decoded %+v", d)
	}
	// Strings holding JSON's punctuation and escapes, and an escaped key.
	var l layer
	if err := Decode([]byte(`{"ty\u0070e": "a\"}{,[]:\\", "in": -0}`), &l); err != nil || l.Type != `a"}{,[]:\` {
		t.Fatalf("Decode = %+v, %v", l, err)
	}
}

// TestDecodeRefuses: every problem is an *Error at the line and column of
// the offending byte, saying what is wrong.
func TestDecodeRefuses(t *testing.T) {
	for _, c := range []struct {
		name, in  string
		line, col int
		msg       string
	}{
		{"empty", "", 1, 1, "no JSON value"},
		{"blank", " \n\t", 2, 2, "no JSON value"},
		{"truncated", "{\"input_shape\": [4],\n \"layers\": [", 2, 13, "unexpected end of input"},
		{"truncated-string", `{"input_shape": [4], "lay`, 1, 26, "unexpected end of input"},
		{"syntax", "{\"input_shape\": [4],\n  \"layers\": [}]}", 2, 14, "syntax error: invalid character '}'"},
		{"trailing-comma", "{\"layers\": [],\n}", 2, 1, "syntax error"},
		{"trailing-garbage", "{\"layers\": []}\n  xyz", 2, 3, "data after the JSON value"},
		{"second-value", `{"layers": []} {"layers": []}`, 1, 16, "data after the JSON value"},
		{"unknown-field", "{\"layers\": [\n {\"type\": \"relu\",\n  \"bogus\": 1}]}", 3, 3, `unknown field "bogus" in layers[0] (known: eps, in, type)`},
		{"unknown-top", `{"layers": [], "nodes": []}`, 1, 16, `unknown field "nodes" in the top-level object`},
		{"case-mismatch", `{"Layers": []}`, 1, 2, `unknown field "Layers"`},
		{"dash-field", `{"layers": [{"type": "relu", "Skip": "x"}]}`, 1, 30, `unknown field "Skip"`},
		{"unknown-in-map-value", `{"tags": {"a": {"type": "relu", "x": 1}}}`, 1, 33, `unknown field "x" in tags.a`},
		{"duplicate", "{\"layers\": [],\n \"layers\": [{\"type\": \"relu\"}]}", 2, 2, `key "layers" repeated in the top-level object (first at line 1, column 2)`},
		{"duplicate-escaped", `{"layers": [], "lay\u0065rs": []}`, 1, 16, `key "layers" repeated in the top-level object`},
		{"duplicate-nested", `{"layers": [{"type": "relu", "type": "tanh"}]}`, 1, 30, `key "type" repeated in layers[0]`},
		{"int-overflow", "{\"input_shape\": [4,\n 4611686018427387904000]}", 2, 2, "input_shape: got number 4611686018427387904000, want an integer from -9223372036854775808 to 9223372036854775807"},
		{"int-exponent", `{"layers": [{"type": "linear", "in": 1e30}]}`, 1, 38, "layers.in: got number 1e30, want an integer"},
		{"int-fraction", `{"layers": [{"type": "linear", "in": 2.5}]}`, 1, 38, "got number 2.5, want an integer"},
		{"float-overflow", `{"layers": [{"type": "linear", "eps": 1e400}]}`, 1, 39, "layers.eps: got number 1e400, want a finite number that fits a float64"},
		{"wrong-kind", `{"layers": [{"type": 3}]}`, 1, 22, "layers.type: got a number, want a string"},
		{"bool-for-int", `{"input_shape": [true]}`, 1, 18, "input_shape: got a bool, want an integer"},
		{"string-for-int", `{"input_shape": ["4"]}`, 1, 18, "input_shape: got a string, want an integer"},
		{"array-for-object", `{"layers": [[1]]}`, 1, 0, "layers: got an array, want an object"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var d doc
			err := Decode([]byte(c.in), &d)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Decode(%q) = %v, want an *Error", c.in, err)
			}
			if !strings.Contains(e.Msg, c.msg) || (c.col > 0 && (e.Line != c.line || e.Column != c.col)) {
				t.Fatalf("Decode(%q) = %v, want line %d, column %d: …%s…", c.in, err, c.line, c.col, c.msg)
			}
		})
	}
}

// TestAt counts lines and columns in characters, not bytes.
func TestAt(t *testing.T) {
	e := At([]byte("ab\nγδx"), 7, "here")
	if e.Line != 2 || e.Column != 3 || e.Error() != "line 2, column 3 (byte 7): here" {
		t.Fatalf("At = %+v", e)
	}
}

// FuzzDecode: Decode never panics, and what it accepts json.Unmarshal
// accepts too, to the same value.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{``, `{}`, `{"layers":[{"type":"relu","in":1}]}`, `{"tags":{"a":{"type":"x"}},"extra":{"q":[1,{"r":"\"}"}]}}`,
		`{"layers":[],"layers":[]}`, `[1,2]`, `{"input_shape":[1e400]}`, `{"lay\u0065rs":null} x`, `"str"`, `{"a":`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var d, ref doc
		if Decode(b, &d) != nil {
			return
		}
		if err := json.Unmarshal(b, &ref); err != nil {
			t.Fatalf("Decode accepted %q, json.Unmarshal refused it: %v", b, err)
		}
		if !reflect.DeepEqual(d, ref) {
			t.Fatalf("Decode(%q) = %+v, json.Unmarshal %+v", b, d, ref)
		}
	})
}
