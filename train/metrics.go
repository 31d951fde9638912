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
	// PrecondTop is the dominant eigenvalue of the preconditioned Hessian
	// P⁻¹H and StabilityLimit the optimizer's c (Config.HessianPrecond):
	// the iteration with P frozen is stable iff lr·PrecondTop < c.
	// PrecondConverged is false when the power iteration stopped at its
	// budget. Recorded in steps.jsonl only (steps.csv keeps its columns).
	PrecondTop       *float64 `json:"precond_top,omitempty"`
	StabilityLimit   *float64 `json:"stability_limit,omitempty"`
	PrecondConverged *bool    `json:"precond_converged,omitempty"`
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
	jpath, cpath string
	jf, cf       *os.File
	jw           *bufio.Writer
	cw           *csv.Writer
	lines        int // records in the JSON-lines file
}

// openLog opens dir/base.jsonl and dir/base.csv for appending, after
// rewriting both with the first end bytes of base.jsonl (records verified
// by resumeRecords; none for a fresh run), atomically (temporary file,
// fsync, rename), so a kill at any moment leaves either the old or the new
// files. kept is the number of those records.
func openLog[R interface{ row() []string }](dir, base string, cols []string, end int64, kept int) (*metricsLog[R], error) {
	jpath, cpath := filepath.Join(dir, base+".jsonl"), filepath.Join(dir, base+".csv")
	// The CSV file first: it is made from the JSON lines, which stay as
	// they were until the second rename.
	err := fileio.WriteAtomic(cpath, 0o644, func(w io.Writer) error {
		cw := csv.NewWriter(w)
		cw.Write(cols)
		err := eachRecord(jpath, end, func(r R) error { return cw.Write(r.row()) })
		cw.Flush()
		return errors.Join(err, cw.Error())
	})
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	err = fileio.WriteAtomic(jpath, 0o644, func(w io.Writer) error {
		return eachRecord(jpath, end, func(r R) error {
			b, err := json.Marshal(r)
			if err != nil {
				return err
			}
			_, err = w.Write(append(b, '\n'))
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	l := &metricsLog[R]{jpath: jpath, cpath: cpath, lines: kept}
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

// Add writes one record to both files.
func (l *metricsLog[R]) Add(r R) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("metrics: %s: line %d: %w", l.jpath, l.lines+1, err)
	}
	if _, err := l.jw.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("metrics: writing %s: %w", l.jpath, err)
	}
	if err := l.cw.Write(r.row()); err != nil {
		return fmt.Errorf("metrics: writing %s: %w", l.cpath, err)
	}
	l.lines++
	return nil
}

// Flush pushes buffered records to the files.
func (l *metricsLog[R]) Flush() error {
	l.cw.Flush()
	if err := l.cw.Error(); err != nil {
		return fmt.Errorf("metrics: writing %s: %w", l.cpath, err)
	}
	if err := l.jw.Flush(); err != nil {
		return fmt.Errorf("metrics: writing %s: %w", l.jpath, err)
	}
	return nil
}

// Sync flushes and fsyncs both files: their records survive a crash.
func (l *metricsLog[R]) Sync() error {
	if err := l.Flush(); err != nil {
		return err
	}
	if err := l.jf.Sync(); err != nil {
		return fmt.Errorf("metrics: syncing %s: %w", l.jpath, err)
	}
	if err := l.cf.Sync(); err != nil {
		return fmt.Errorf("metrics: syncing %s: %w", l.cpath, err)
	}
	return nil
}

// Close flushes and closes both files.
func (l *metricsLog[R]) Close() error {
	err := l.Flush()
	if e := l.jf.Close(); err == nil && e != nil {
		err = fmt.Errorf("metrics: closing %s: %w", l.jpath, e)
	}
	if e := l.cf.Close(); err == nil && e != nil {
		err = fmt.Errorf("metrics: closing %s: %w", l.cpath, e)
	}
	return err
}

// finite reports whether v is neither NaN nor ±Inf.
func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
