package optim

import (
	"errors"
	"fmt"
	"math"
	"reflect"
)

// A Config's hyperparameters are described once, by struct tags on its
// fields:
//
//	Momentum float64 `hyper:"momentum" doc:"momentum μ in [0, 1)"`
//
// The hyper tag gives the knob's one name: the name its Validate reports,
// the command-line flag, the key in a run's config.json and in the -hyper
// syntax of the comparison tool. The doc tag says what it is, for usage
// text. A field without a hyper tag (an estimator choice, a seed, a probe
// source) is not a knob. Knobs lists them with the Config's values, so the
// defaults shown to a user are read from the Default Config itself.

// KnobKind is the type of a knob's value.
type KnobKind int

const (
	// KnobFloat is a float64 field.
	KnobFloat KnobKind = iota
	// KnobInt is an int field (a count or an interval).
	KnobInt
	// KnobBool is a bool field (a switch).
	KnobBool
)

// String returns "float", "int" or "bool".
func (k KnobKind) String() string {
	switch k {
	case KnobFloat:
		return "float"
	case KnobInt:
		return "int"
	case KnobBool:
		return "bool"
	}
	return fmt.Sprintf("KnobKind(%d)", int(k))
}

// Knob is one hyperparameter of a Config, as its tags describe it.
type Knob struct {
	Name  string   // the one name (the hyper tag)
	Doc   string   // what it is (the doc tag)
	Kind  KnobKind // the type of its value
	Value any      // its value in the Config: float64, int or bool
}

// maxWholeKnob bounds an int knob given as a float64: a count or interval
// beyond it is refused rather than converted with implementation-defined
// rounding.
const maxWholeKnob = math.MaxInt32

// Knobs returns the knobs of cfg, a Config struct or a pointer to one, in
// field order, with cfg's values. It returns an error if cfg is not a
// struct or a tagged field is not a float64, int or bool.
func Knobs(cfg any) ([]Knob, error) {
	v := reflect.Indirect(reflect.ValueOf(cfg))
	if v.Kind() != reflect.Struct {
		return nil, fmt.Errorf("optim: knobs of %T: not a struct", cfg)
	}
	var out []Knob
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, ok := f.Tag.Lookup("hyper")
		if !ok {
			continue
		}
		k := Knob{Name: name, Doc: f.Tag.Get("doc")}
		switch fv := v.Field(i); fv.Kind() {
		case reflect.Float64:
			k.Kind, k.Value = KnobFloat, fv.Float()
		case reflect.Int:
			k.Kind, k.Value = KnobInt, int(fv.Int())
		case reflect.Bool:
			k.Kind, k.Value = KnobBool, fv.Bool()
		default:
			return nil, fmt.Errorf("optim: knob %s of %T: field %s is a %s, want float64, int or bool", name, cfg, f.Name, fv.Kind())
		}
		out = append(out, k)
	}
	return out, nil
}

// ErrNoKnob is wrapped by SetKnob's error when the Config has no knob of
// that name.
var ErrNoKnob = errors.New("no such hyperparameter")

// SetKnob sets the knob called name in *cfg (a pointer to a Config) to x:
// a float64 or an int for a float knob, an int or a whole float64 of at
// most 2147483647 in magnitude for an int knob, a bool for a bool knob. The
// value is not validated (the Config's Validate does that, naming the
// knob); a value of the wrong type is an error naming the knob, and
// nothing is set.
func SetKnob(cfg any, name string, x any) error {
	v := reflect.ValueOf(cfg)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("optim: set %s: %T is not a pointer to a Config", name, cfg)
	}
	v = v.Elem()
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		if tag, ok := t.Field(i).Tag.Lookup("hyper"); !ok || tag != name {
			continue
		}
		fv := v.Field(i)
		switch fv.Kind() {
		case reflect.Float64:
			f, ok := toFloat(x)
			if !ok {
				return fmt.Errorf("hyperparameter %s = %v: a %T, want a number", name, x, x)
			}
			fv.SetFloat(f)
		case reflect.Int:
			n, err := toWhole(x)
			if err != nil {
				return fmt.Errorf("hyperparameter %s = %v: %w", name, x, err)
			}
			fv.SetInt(int64(n))
		case reflect.Bool:
			b, ok := x.(bool)
			if !ok {
				return fmt.Errorf("hyperparameter %s = %v: a %T, want true or false", name, x, x)
			}
			fv.SetBool(b)
		default:
			return fmt.Errorf("optim: knob %s: field %s is a %s, want float64, int or bool", name, t.Field(i).Name, fv.Kind())
		}
		return nil
	}
	return fmt.Errorf("%w %q", ErrNoKnob, name)
}

// toFloat converts a number of any Go numeric type to float64.
func toFloat(x any) (float64, bool) {
	v := reflect.ValueOf(x)
	switch v.Kind() {
	case reflect.Float32, reflect.Float64:
		return v.Float(), true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return float64(v.Int()), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return float64(v.Uint()), true
	}
	return 0, false
}

// toWhole converts an integer, or a float64 holding a whole number, of at
// most maxWholeKnob in magnitude, to int.
func toWhole(x any) (int, error) {
	f, ok := toFloat(x)
	if !ok {
		return 0, fmt.Errorf("a %T, want a whole number", x)
	}
	if f != math.Trunc(f) || math.Abs(f) > maxWholeKnob {
		return 0, fmt.Errorf("must be a whole number of at most %d in magnitude", maxWholeKnob)
	}
	return int(f), nil
}
