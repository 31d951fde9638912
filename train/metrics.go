package train

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"github.com/curvopt/curvopt/internal/fileio"
)

// StepRecord is the metrics of one training step.
type StepRecord struct {
	Step     int     `json:"step"` // 1-based count of completed steps
	Epoch    int     `json:"epoch"`
	Loss     float64 `json:"loss"`
	Acc      float64 `json:"acc"` // training-batch accuracy
	LR       float64 `json:"lr"`
	StepMS   float64 `json:"step_ms"`
	GradNorm float64 `json:"grad_norm"`
	// Diag holds the optimizer's diagnostics (Sophia's "win_rate", ...).
	Diag map[string]float64 `json:"diag,omitempty"`
	// HessTop and HessTrace are the Hessian's top eigenvalue and trace,
	// present on the steps where they were measured (-hessian-every).
	HessTop   *float64 `json:"hessian_top,omitempty"`
	HessTrace *float64 `json:"hessian_trace,omitempty"`
	// HessTraceSE is the trace estimate's standard error.
	HessTraceSE *float64 `json:"hessian_trace_se,omitempty"`
	// HessConverged is false when Lanczos stopped at its iteration budget:
	// HessTop is then its last estimate.
	HessConverged *bool `json:"hessian_converged,omitempty"`
}

// EpochRecord is the metrics of one epoch, with the test evaluation.
type EpochRecord struct {
	Epoch     int     `json:"epoch"`
	Step      int     `json:"step"`
	TrainLoss float64 `json:"train_loss"`
	TrainAcc  float64 `json:"train_acc"`
	TestLoss  float64 `json:"test_loss"`
	TestAcc   float64 `json:"test_acc"`
	WallS     float64 `json:"wall_s"`
}

var stepColumns = []string{"step", "epoch", "loss", "acc", "lr", "step_ms", "grad_norm", "win_rate", "hessian_top", "hessian_trace", "hessian_trace_se", "hessian_converged"}
var epochColumns = []string{"epoch", "step", "train_loss", "train_acc", "test_loss", "test_acc", "wall_s"}

func (r StepRecord) row() []string {
	opt := func(p *float64) string {
		if p == nil {
			return ""
		}
		return ff(*p)
	}
	win := ""
	if v, ok := r.Diag["win_rate"]; ok {
		win = ff(v)
	}
	conv := ""
	if r.HessConverged != nil {
		conv = strconv.FormatBool(*r.HessConverged)
	}
	return []string{strconv.Itoa(r.Step), strconv.Itoa(r.Epoch), ff(r.Loss), ff(r.Acc), ff(r.LR), ff(r.StepMS), ff(r.GradNorm), win, opt(r.HessTop), opt(r.HessTrace), opt(r.HessTraceSE), conv}
}

func (r EpochRecord) row() []string {
	return []string{strconv.Itoa(r.Epoch), strconv.Itoa(r.Step), ff(r.TrainLoss), ff(r.TrainAcc), ff(r.TestLoss), ff(r.TestAcc), ff(r.WallS)}
}

func ff(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// metricsLog appends records to a JSON-lines file and a CSV file side by side.
type metricsLog[R interface{ row() []string }] struct {
	jf, cf *os.File
	jw     *bufio.Writer
	cw     *csv.Writer
}

// openLog opens dir/base.jsonl and dir/base.csv for appending. With keep
// nil they are started afresh. Otherwise (a resumed run) the records of the
// existing base.jsonl are read in order and kept while keep(i, record) is
// true; the first record it refuses and everything after it are dropped, as
// is a torn last line (a write cut by a kill). Both files are then rewritten
// atomically (temporary file, fsync, rename), so a kill at any moment leaves
// either the old or the new files.
func openLog[R interface{ row() []string }](dir, base string, cols []string, keep func(i int, r R) bool) (*metricsLog[R], error) {
	jpath, cpath := filepath.Join(dir, base+".jsonl"), filepath.Join(dir, base+".csv")
	var kept []R
	if keep != nil {
		var err error
		if kept, err = readKept(jpath, keep); err != nil {
			return nil, err
		}
	}
	err := fileio.WriteAtomic(jpath, 0o644, func(w io.Writer) error {
		for _, r := range kept {
			b, err := json.Marshal(r)
			if err != nil {
				return err
			}
			if _, err := w.Write(append(b, '\n')); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	err = fileio.WriteAtomic(cpath, 0o644, func(w io.Writer) error {
		cw := csv.NewWriter(w)
		cw.Write(cols)
		for _, r := range kept {
			cw.Write(r.row())
		}
		cw.Flush()
		return cw.Error()
	})
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	l := &metricsLog[R]{}
	if l.jf, err = os.OpenFile(jpath, os.O_WRONLY|os.O_APPEND, 0); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	if l.cf, err = os.OpenFile(cpath, os.O_WRONLY|os.O_APPEND, 0); err != nil {
		l.jf.Close()
		return nil, fmt.Errorf("metrics: %w", err)
	}
	l.jw, l.cw = bufio.NewWriter(l.jf), csv.NewWriter(l.cf)
	return l, nil
}

// readKept reads the records of a JSON-lines file while keep accepts them.
// A missing file holds no records; a torn last line (no newline) is
// dropped; an unreadable complete line before the first refused record is
// an error naming the file and line.
func readKept[R any](path string, keep func(int, R) bool) ([]R, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var kept []R
	for line := 1; ; line++ {
		b, err := br.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return kept, nil // a torn last line (len(b) > 0) is dropped
		}
		if err != nil {
			return nil, fmt.Errorf("metrics: reading %s to resume: %w", path, err)
		}
		var r R
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("metrics: reading %s to resume: line %d: %w", path, line, err)
		}
		if !keep(len(kept), r) {
			return kept, nil
		}
		kept = append(kept, r)
	}
}

// Add writes one record to both files.
func (l *metricsLog[R]) Add(r R) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	l.jw.Write(b)
	l.jw.WriteByte('\n')
	return l.cw.Write(r.row())
}

// Flush pushes buffered records to the files.
func (l *metricsLog[R]) Flush() error {
	l.cw.Flush()
	if err := l.cw.Error(); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	if err := l.jw.Flush(); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}

// Sync flushes and fsyncs both files: their records survive a crash.
func (l *metricsLog[R]) Sync() error {
	if err := l.Flush(); err != nil {
		return err
	}
	if err := l.jf.Sync(); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	if err := l.cf.Sync(); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}

// Close flushes and closes both files.
func (l *metricsLog[R]) Close() error {
	err := l.Flush()
	if e := l.jf.Close(); err == nil {
		err = e
	}
	if e := l.cf.Close(); err == nil {
		err = e
	}
	return err
}

// finite reports whether v is neither NaN nor ±Inf.
func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
