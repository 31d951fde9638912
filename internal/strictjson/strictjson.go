// Package strictjson decodes a JSON document into a Go value strictly, for
// the files that people write by hand (model specs, DAGs): exactly one JSON
// value and nothing after it, every key a field of the target spelled as its
// tag spells it, no key twice in one object, every number fitting its field;
// and every error says where the problem is, by line and column.
//
// encoding/json alone accepts trailing data after the value (Decoder),
// matches keys case-insensitively, lets a repeated key overwrite the first,
// and reports a truncated document as a bare "unexpected EOF" with no
// position; this package closes those gaps.
package strictjson

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strings"
	"unicode/utf8"
)

// Error is a problem at a position of the document.
type Error struct {
	Offset int64 // bytes before the problem
	Line   int   // 1-based
	Column int   // 1-based, in characters (UTF-8 code points)
	Msg    string
}

func (e *Error) Error() string {
	return fmt.Sprintf("line %d, column %d (byte %d): %s", e.Line, e.Column, e.Offset, e.Msg)
}

// At returns an Error at byte offset off of data (clamped to data), with the
// line and column computed from the bytes before it.
func At(data []byte, off int64, format string, args ...any) *Error {
	off = max(0, min(off, int64(len(data))))
	before := data[:off]
	line := bytes.Count(before, []byte{'\n'}) + 1
	start := bytes.LastIndexByte(before, '\n') + 1
	return &Error{Offset: off, Line: line, Column: utf8.RuneCount(before[start:]) + 1, Msg: fmt.Sprintf(format, args...)}
}

// Decode decodes data, which must hold exactly one JSON value (surrounding
// white space allowed), into v, a non-nil pointer. Inside structs, every
// key must be the exact name of a field (its json tag), and no object may
// repeat a key. Values of types with their own UnmarshalJSON or
// UnmarshalText, maps' and interfaces' contents are decoded as
// encoding/json does. The returned error is an *Error for any problem of the
// document.
func Decode(data []byte, v any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return At(data, int64(len(data)), "no JSON value (the input is empty)")
	}
	// json.Unmarshal checks the syntax of the whole input (trailing data
	// included) before it decodes, and works on data in place, where a
	// json.Decoder would copy it into a buffer grown by doubling.
	decErr := json.Unmarshal(data, v)
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(decErr, &syn):
		msg := strings.TrimPrefix(syn.Error(), "json: ")
		switch {
		case strings.HasPrefix(msg, "unexpected end of JSON input"):
			return At(data, int64(len(data)), "unexpected end of input: the JSON value is not complete (truncated file?)")
		case strings.Contains(msg, "after top-level value"):
			return At(data, syn.Offset-1, "data after the JSON value (a file holds exactly one value)")
		}
		// Offset counts the bytes read, the offending one included.
		return At(data, syn.Offset-1, "syntax error: %s", msg)
	case errors.As(decErr, &typ):
		return typeError(data, typ)
	case decErr != nil:
		return fmt.Errorf("json: %w", decErr)
	}
	// Unknown fields, the spelling of keys and repeated keys, which
	// json.Unmarshal lets through.
	w := walker{data: data}
	return w.value(reflect.TypeOf(v), "")
}

// typeError reports a value that does not fit its field, at the value.
func typeError(data []byte, e *json.UnmarshalTypeError) error {
	// encoding/json's offset is at or after the end of the value; point at
	// its first byte by backing up over the literal.
	off := min(e.Offset, int64(len(data)))
	got := e.Value
	if lit, ok := strings.CutPrefix(e.Value, "number "); ok {
		if i := bytes.LastIndex(data[:off], []byte(lit)); i >= 0 {
			off = int64(i)
		}
	} else {
		switch {
		case e.Value == "string" && off >= 2 && data[off-1] == '"':
			for i := off - 2; i >= 0; i-- {
				if data[i] == '"' && (i == 0 || data[i-1] != '\\') {
					off = i
					break
				}
			}
		case e.Value == "number" || e.Value == "bool":
			for off > 0 && strings.IndexByte("0123456789+-.eEtruefalsn", data[off-1]) >= 0 {
				off--
			}
		}
		got = "a " + e.Value
		if e.Value == "array" || e.Value == "object" {
			got = "an " + e.Value
		}
	}
	field := e.Field
	if field == "" {
		field = "the document"
	}
	return At(data, off, "%s: got %s, want %s", field, got, describe(e.Type))
}

// describe says in words what JSON value a Go type takes.
func describe(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		bits := t.Bits()
		return fmt.Sprintf("an integer from %d to %d", int64(-1)<<(bits-1), int64(math.MaxInt64>>(64-bits)))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return fmt.Sprintf("an integer from 0 to %d", uint64(math.MaxUint64>>(64-t.Bits())))
	case reflect.Float32, reflect.Float64:
		return fmt.Sprintf("a finite number that fits a float%d", t.Bits())
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return "a " + t.String()
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// walker follows a syntactically valid document (json.Unmarshal has
// checked it) byte by byte alongside the Go type it is decoded into, to find
// unknown and repeated keys with their position. It copies nothing but keys.
type walker struct {
	data []byte
	off  int
}

func (w *walker) skipSpace() {
	for w.off < len(w.data) && isSpace(w.data[w.off]) {
		w.off++
	}
}

// peek returns the byte at the offset, or 0 at the end (which a valid
// document never reaches inside a value).
func (w *walker) peek() byte {
	if w.off < len(w.data) {
		return w.data[w.off]
	}
	return 0
}

// str skips the string at the offset and returns it, quotes included.
func (w *walker) str() []byte {
	start := w.off
	for w.off++; w.off < len(w.data); w.off++ {
		switch w.data[w.off] {
		case '\\':
			w.off++
		case '"':
			w.off++
			return w.data[start:w.off]
		}
	}
	return w.data[start:]
}

// opaque reports whether values of t are not structs to check: nil (any
// value), interfaces and types that decode themselves.
func opaque(t reflect.Type) bool {
	if t == nil || t.Kind() == reflect.Interface {
		return true
	}
	p := reflect.PointerTo(t)
	return p.Implements(jsonUnmarshaler) || p.Implements(textUnmarshaler) || t.Implements(jsonUnmarshaler)
}

// key decodes a key as encoding/json does (escapes included).
func key(raw []byte) string {
	if bytes.IndexByte(raw, '\\') < 0 && len(raw) >= 2 {
		return string(raw[1 : len(raw)-1])
	}
	var k string
	if json.Unmarshal(raw, &k) != nil {
		return string(raw)
	}
	return k
}

// value walks one value of Go type t (nil: anything) at path.
func (w *walker) value(t reflect.Type, path string) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if opaque(t) {
		t = nil
	}
	w.skipSpace()
	switch w.peek() {
	case '"':
		w.str()
		return nil
	case '[':
		return w.array(t, path)
	case '{':
		return w.object(t, path)
	case 0:
		return At(w.data, int64(w.off), "unexpected end of input")
	}
	for w.off < len(w.data) && !isSpace(w.data[w.off]) && strings.IndexByte(",]}", w.data[w.off]) < 0 {
		w.off++
	}
	return nil
}

func (w *walker) array(t reflect.Type, path string) error {
	var elem reflect.Type
	if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
		elem = t.Elem()
	}
	w.off++ // '['
	for i := 0; ; i++ {
		w.skipSpace()
		switch w.peek() {
		case ']':
			w.off++
			return nil
		case ',':
			w.off++
		case 0:
			return At(w.data, int64(w.off), "unexpected end of input")
		}
		if err := w.value(elem, fmt.Sprintf("%s[%d]", path, i)); err != nil {
			return err
		}
	}
}

func (w *walker) object(t reflect.Type, path string) error {
	var fields map[string]reflect.Type
	var elem reflect.Type
	switch {
	case t == nil:
	case t.Kind() == reflect.Struct:
		fields = map[string]reflect.Type{}
		structFields(t, fields)
	case t.Kind() == reflect.Map:
		elem = t.Elem()
	}
	where := path
	if where == "" {
		where = "the top-level object"
	}
	seen := map[string]int{}
	w.off++ // '{'
	for {
		w.skipSpace()
		switch w.peek() {
		case '}':
			w.off++
			return nil
		case ',':
			w.off++
			w.skipSpace()
		}
		if w.peek() != '"' {
			return At(w.data, int64(w.off), "syntax error: want a key")
		}
		at := w.off
		k := key(w.str())
		w.skipSpace()
		w.off++ // ':'
		if first, dup := seen[k]; dup {
			prev := At(w.data, int64(first), "")
			return At(w.data, int64(at), "key %q repeated in %s (first at line %d, column %d)", k, where, prev.Line, prev.Column)
		}
		seen[k] = at
		ft := elem
		if fields != nil {
			var ok bool
			if ft, ok = fields[k]; !ok {
				return At(w.data, int64(at), "unknown field %q in %s (known: %s)", k, where, known(fields))
			}
		}
		sub := k
		if path != "" {
			sub = path + "." + k
		}
		if err := w.value(ft, sub); err != nil {
			return err
		}
	}
}

// structFields adds the JSON names of t's fields (encoding/json's rules:
// the tag's name, else the field's; "-" skipped; untagged embedded structs
// promoted) to fields.
func structFields(t reflect.Type, fields map[string]reflect.Type) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		ft := f.Type
		if f.Anonymous && name == "" {
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				structFields(ft, fields)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if _, dup := fields[name]; !dup {
			fields[name] = f.Type
		}
	}
}

func known(fields map[string]reflect.Type) string {
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
