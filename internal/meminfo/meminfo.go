// Package meminfo reports how much memory the machine can still give a
// process, so that callers can check a large allocation before making it
// and say what was asked and what is available instead of dying with
// "fatal error: out of memory".
package meminfo

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

// Source returns the number of bytes available for new allocations. The
// zero Source stands for Available; tests inject their own.
type Source func() (int64, error)

// ErrUnknown is returned where the available memory cannot be known (no
// /proc/meminfo); callers then skip their check.
var ErrUnknown = errors.New("available memory unknown")

// Available returns MemAvailable from /proc/meminfo: the kernel's estimate
// of the memory that can be allocated without swapping.
func Available() (int64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrUnknown, err)
	}
	defer f.Close()
	return Parse(f)
}

// Parse reads MemAvailable from the text of /proc/meminfo
// ("MemAvailable:   1234 kB").
func Parse(r io.Reader) (int64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "MemAvailable:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("%w: malformed MemAvailable line %q", ErrUnknown, sc.Text())
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || kb < 0 || kb > 1<<43 {
			return 0, fmt.Errorf("%w: malformed MemAvailable line %q", ErrUnknown, sc.Text())
		}
		return kb << 10, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrUnknown, err)
	}
	return 0, fmt.Errorf("%w: no MemAvailable line", ErrUnknown)
}

// Get calls s, or Available when s is nil.
func (s Source) Get() (int64, error) {
	if s == nil {
		return Available()
	}
	return s()
}

// Check returns nil when need bytes fit in what s reports available, or
// when that is unknown; otherwise an error saying what was asked for
// (what), how much is needed and how much is available (MemAvailable),
// followed by hint (the flag or setting to change).
func (s Source) Check(what string, need int64, hint string) error {
	return s.CheckAgainst("MemAvailable", what, need, hint)
}

// CheckAgainst is Check for a source that is not MemAvailable: the error
// names it as budget says ("-memory-limit", say).
func (s Source) CheckAgainst(budget, what string, need int64, hint string) error {
	avail, err := s.Get()
	if err != nil {
		return nil // no way to know: let the allocation decide
	}
	if need <= avail {
		return nil
	}
	msg := fmt.Sprintf("%s needs %s but %s is available (%s)", what, Bytes(need), Bytes(avail), budget)
	if hint != "" {
		msg += ": " + hint
	}
	return &Error{Need: need, Available: avail, Msg: msg}
}

// Fixed returns a Source that always reports n bytes: a budget set by the
// user instead of what the machine has.
func Fixed(n int64) Source { return func() (int64, error) { return n, nil } }

// Mul returns a·b for a, b >= 0, saturating at math.MaxInt64: byte counts
// of hostile shapes never wrap around to something small.
func Mul(a, b int64) int64 {
	if a != 0 && b > math.MaxInt64/a {
		return math.MaxInt64
	}
	return a * b
}

// Add returns a+b for a, b >= 0, saturating at math.MaxInt64.
func Add(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// Error reports an allocation that would not fit in the available memory.
type Error struct {
	Need, Available int64
	Msg             string
}

func (e *Error) Error() string { return e.Msg }

// Bytes formats n bytes for people: "3.9 GB", "512 MB", "4 kB", "12 B"
// (powers of 1000, as MemAvailable's readers expect nothing finer).
func Bytes(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.1f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}

// ParseBytes parses a memory size: a whole or decimal number of bytes
// with an optional unit, kB, MB, GB, TB (powers of 1000, as Bytes prints
// them) or KiB, MiB, GiB, TiB (powers of 1024), e.g. "2GB",
// "512MB", "1.5GiB", "1000000". The unit's case is ignored; the result
// must be in [0, 2⁶²].
func ParseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   float64
	}{
		{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
		{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12}, {"b", 1},
	}
	mult := 1.0
	lower := strings.ToLower(t)
	for _, u := range units {
		if strings.HasSuffix(lower, u.suffix) {
			t, mult = strings.TrimSpace(t[:len(t)-len(u.suffix)]), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || strings.ContainsAny(t, "xXpP_") {
		return 0, fmt.Errorf("memory size %q: want a number of bytes with an optional unit (kB, MB, GB, TB, KiB, MiB, GiB, TiB), e.g. 2GB", s)
	}
	n := math.Round(v * mult)
	if n > 1<<62 {
		return 0, fmt.Errorf("memory size %q exceeds 2^62 bytes", s)
	}
	return int64(n), nil
}
