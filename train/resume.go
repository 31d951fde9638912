package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/curvopt/curvopt/internal/num"
	"os"
	"path/filepath"

	"github.com/curvopt/curvopt/data"
	"github.com/curvopt/curvopt/internal/meminfo"
	"github.com/curvopt/curvopt/nn"
	"github.com/curvopt/curvopt/optim"
	"gorgonia.org/tensor"
)

// RunConfig is the part of a Config that determines a run: its checkpoint
// records it, and a resumed run is checked against it.
//
// On resume these may change: the budget (Steps, Epochs), the evaluation
// and checkpoint intervals (EvalEvery, CheckpointEvery), the evaluation
// batch size (EvalBatch), the data directory (Data.Dir) and, when set
// explicitly, the schedule. Everything else must equal the recorded value,
// or the resume is refused with an error naming both values.
//
// The schedule's horizon is recorded resolved: a cosine schedule resumed
// with Total 0 keeps the recorded horizon whatever the new budget (a budget
// beyond it is refused: set Total to stretch the schedule).
type RunConfig struct {
	Model           nn.DAG       `json:"model"`
	Data            data.Spec    `json:"data"`
	Optimizer       string       `json:"optimizer"`
	Hyper           Hyper        `json:"hyper"`
	Steps           int          `json:"steps"`
	Epochs          int          `json:"epochs"`
	BatchSize       int          `json:"batch_size"`
	DropLast        bool         `json:"drop_last"`
	GNBBatch        int          `json:"gnb_batch"`
	EvalBatch       int          `json:"eval_batch"`
	Seed            uint64       `json:"seed"`
	Dtype           string       `json:"dtype"`
	Schedule        Schedule     `json:"schedule"`
	ClipNorm        float64      `json:"clip_norm"`
	Normalize       bool         `json:"normalize"`
	Augment         data.Augment `json:"augment"`
	CheckpointEvery int          `json:"checkpoint_every"`
	EvalEvery       int          `json:"eval_every"`
	HessianEvery    int          `json:"hessian_every"`
	HessianQuick    bool         `json:"hessian_quick,omitempty"`
	HessianPrecond  bool         `json:"hessian_precond,omitempty"`
	DecayAll        bool         `json:"decay_all"`
}

// record returns c's run-defining part.
func (c Config) record() RunConfig {
	return RunConfig{
		Model: c.Model, Data: c.Data, Optimizer: c.Optimizer, Hyper: c.Hyper,
		Steps: c.Steps, Epochs: c.Epochs, BatchSize: c.BatchSize, DropLast: c.DropLast,
		GNBBatch: c.GNBBatch, EvalBatch: c.EvalBatch, Seed: c.Seed, Dtype: c.Dtype.String(),
		Schedule: c.Schedule, ClipNorm: c.ClipNorm, Normalize: c.Normalize, Augment: c.Augment,
		CheckpointEvery: c.CheckpointEvery, EvalEvery: c.EvalEvery, HessianEvery: c.HessianEvery, HessianQuick: c.HessianQuick, HessianPrecond: c.HessianPrecond,
		DecayAll: c.DecayAll,
	}
}

// Config returns the recorded configuration as a Config to resume with
// (Resume set; OutDir, Progress and the datasets are the caller's).
func (rc RunConfig) Config() (Config, error) {
	c := Config{
		Model: rc.Model, Data: rc.Data, Optimizer: rc.Optimizer, Hyper: Hyper{},
		Steps: rc.Steps, Epochs: rc.Epochs, BatchSize: rc.BatchSize, DropLast: rc.DropLast,
		GNBBatch: rc.GNBBatch, EvalBatch: rc.EvalBatch, Seed: rc.Seed,
		Schedule: rc.Schedule, ClipNorm: rc.ClipNorm, Normalize: rc.Normalize, Augment: rc.Augment,
		CheckpointEvery: rc.CheckpointEvery, EvalEvery: rc.EvalEvery, HessianEvery: rc.HessianEvery, HessianQuick: rc.HessianQuick, HessianPrecond: rc.HessianPrecond,
		DecayAll: rc.DecayAll, Resume: true,
	}
	for k, v := range rc.Hyper {
		c.Hyper[k] = v
	}
	switch rc.Dtype {
	case "float32":
		c.Dtype = tensor.Float32
	case "float64":
		c.Dtype = tensor.Float64
	default:
		return c, fmt.Errorf("recorded dtype %q: want float32 or float64", rc.Dtype)
	}
	return c, nil
}

// ReadRunConfig returns the configuration recorded in dir's checkpoint, to
// resume a run without repeating its settings.
func ReadRunConfig(dir string) (Config, error) {
	path := filepath.Join(dir, checkpointFile)
	c, err := ReadCheckpointInfo(path)
	if err != nil {
		return Config{}, fmt.Errorf("train: resume: %w", err)
	}
	var rc RunConfig
	if err := json.Unmarshal(c.Config, &rc); err != nil {
		return Config{}, fmt.Errorf("train: resume: %s: the recorded configuration: %w", path, err)
	}
	cfg, err := rc.Config()
	if err != nil {
		return cfg, fmt.Errorf("train: resume: %s: %w", path, err)
	}
	cfg.OutDir = dir
	return cfg, nil
}

// checkResumable compares the run's configuration with the checkpoint's
// (rc) and, where the schedule's horizon was left to the run, takes the
// recorded one. It refuses a difference in anything that may not change on
// resume, naming both values and which one is the checkpoint's.
func (r *run) checkResumable(path string, rc RunConfig) error {
	here := r.cfg.record()
	if r.autoHorizon && rc.Schedule.Kind == "cosine" && here.Schedule.Kind == "cosine" {
		r.cfg.Schedule.Total = rc.Schedule.Total
		here.Schedule.Total = rc.Schedule.Total
	}
	if s := r.cfg.Schedule; s.Kind == "cosine" && r.total > s.Total && s.MinFactor == 0 {
		return fmt.Errorf("train: resume: the budget is %d steps but the cosine schedule (recorded in %s: %d steps) ends at step %d, where the rate reaches 0: keep the budget, or set the schedule's horizon explicitly (-schedule cosine:%d) to stretch it (the remaining steps' rates then change)",
			r.total, path, rc.Schedule.Total, s.Total, r.total)
	}
	// An older checkpoint recorded only the hyperparameters given: compare
	// the values used (the defaults have not changed).
	if rc.Optimizer == here.Optimizer {
		if h, err := ResolveHyper(rc.Optimizer, rc.Hyper, r.predictions, r.cfg.Seed); err == nil {
			rc.Hyper = h
		}
	}
	here.Data.Dir, rc.Data.Dir = "", ""
	fields := []struct {
		name     string
		now, was any
	}{
		{"model", here.Model, rc.Model}, {"data", here.Data, rc.Data}, {"optimizer", here.Optimizer, rc.Optimizer},
		{"batch size", here.BatchSize, rc.BatchSize}, {"drop-last", here.DropLast, rc.DropLast}, {"GNB batch", here.GNBBatch, rc.GNBBatch},
		{"hyperparameters", here.Hyper, rc.Hyper}, // after the batch sizes, which SophiaG's bs follows
		{"seed", here.Seed, rc.Seed}, {"dtype", here.Dtype, rc.Dtype}, {"clip norm", here.ClipNorm, rc.ClipNorm},
		{"normalize", here.Normalize, rc.Normalize}, {"augment", here.Augment, rc.Augment},
		{"hessian-every", here.HessianEvery, rc.HessianEvery}, {"hessian-quick", here.HessianQuick, rc.HessianQuick}, {"hessian-precond", here.HessianPrecond, rc.HessianPrecond}, {"decay-all", here.DecayAll, rc.DecayAll},
	}
	for _, f := range fields {
		a, err1 := json.Marshal(f.now)
		b, err2 := json.Marshal(f.was)
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("train: resume: comparing the %s: %w", f.name, err)
		}
		if string(a) != string(b) {
			return fmt.Errorf("train: resume: the %s differ: %s for this run but %s in the checkpoint %s; on resume only the budget (steps, epochs), the schedule, the evaluation and checkpoint intervals, the evaluation batch and the data directory may change",
				f.name, a, b, path)
		}
	}
	return nil
}

// checkpoint saves the run's state to OutDir/checkpoint.gob (nothing when
// there is no OutDir). The metrics files are made durable first, so that
// they always hold every record up to the checkpoint's step.
func (r *run) checkpoint() error {
	if r.cfg.OutDir == "" {
		return nil
	}
	if !writer(r.cfg) { // a data-parallel run's rank 0 writes
		if _, ok := r.opt.(*shardedOpt); ok {
			_, err := r.stateView() // a collective: the slices gathered on every rank
			return err
		}
		return nil
	}
	if r.steps != nil {
		if err := errors.Join(r.steps.Sync(), r.epochs.Sync()); err != nil {
			return fmt.Errorf("train: checkpoint: %w", err)
		}
	}
	st, err := r.stateView() // streamed to disk without a copy
	if err != nil {
		return fmt.Errorf("train: checkpoint: %w", err)
	}
	ds, err := r.it.State()
	if err != nil {
		return fmt.Errorf("train: checkpoint: %w", err)
	}
	rc, err := json.Marshal(r.cfg.record())
	if err != nil {
		return fmt.Errorf("train: checkpoint: recording the configuration: %w", err)
	}
	c := &Checkpoint{
		Model: r.modelKey, Optimizer: r.opt.Name(), Dtype: r.cfg.Dtype.String(),
		Step: r.step, Epoch: r.epoch, Evals: r.evals, EvalStep: r.evalStep, Config: rc,
		Opt: st, Data: ds, Best: r.best, Wall: r.wall,
		Blobs: map[string][]byte{},
	}
	params := r.eng.Params()
	var vals optim.State
	for _, p := range params {
		vals.ExportSlot("value", []optim.Param{p}, []*dense{p.Value})
	}
	for _, name := range r.model.BatchNormNames() {
		mean, vari, err := r.model.RunningStats(name)
		if err != nil {
			return fmt.Errorf("train: checkpoint: %w", err)
		}
		p := []optim.Param{{Name: name, Value: mean}}
		vals.ExportSlot("running_mean", p, []*dense{mean})
		vals.ExportSlot("running_var", p, []*dense{vari})
	}
	c.Params = vals.Tensors
	for name, pcg := range map[string]interface{ MarshalBinary() ([]byte, error) }{"sampler": r.samplerPCG, "hessian": r.hessPCG} {
		b, err := pcg.MarshalBinary()
		if err != nil {
			return fmt.Errorf("train: checkpoint: %w", err)
		}
		c.Blobs[name] = b
	}
	c.Blobs["epoch_sums"] = encodeFloats(r.epLoss, r.epAcc, float64(r.epSteps))
	c.Blobs["last_eval"] = encodeFloats(r.res.FinalTestLoss, r.res.FinalTestAcc)
	if ds := r.model.DropoutState(); ds != nil {
		c.Blobs["dropout_step"] = encodeFloats(float64(ds.Step()))
	}
	if err := SaveCheckpoint(filepath.Join(r.cfg.OutDir, checkpointFile), c); err != nil {
		return fmt.Errorf("train: checkpoint: %w", err)
	}
	r.saved = true
	return nil
}

// stateView returns the optimizer's state, without copies where the
// optimizer offers a view (valid until the next step).
func (r *run) stateView() (*optim.State, error) {
	if v, ok := r.opt.(stateViewer); ok {
		return v.StateView()
	}
	return r.opt.State()
}

// stateViewer is implemented by optimizers with large state (M-FAC): the
// view's tensors alias the live buffers and are valid until the next step.
type stateViewer interface {
	StateView() (*optim.State, error)
}

// stateTaker is implemented by optimizers with large state (M-FAC): like
// LoadState, but the optimizer may keep the state's buffers.
type stateTaker interface {
	TakeState(params []optim.Param, s *optim.State) error
}

// stateReserver is implemented by optimizers whose state a checkpoint
// holds in part (M-FAC's window: the rows written): Reserve says how many
// values to make room for in a tensor, so that TakeState keeps the buffer
// read.
type stateReserver interface {
	Reserve(t *optim.StateTensor) int
}

// refuseOverwrite returns an error when a fresh run would replace the run
// (its checkpoint) in dir, unless the configuration allows it.
func refuseOverwrite(cfg Config) error {
	if cfg.OutDir == "" || cfg.Resume || cfg.Overwrite {
		return nil
	}
	path := filepath.Join(cfg.OutDir, checkpointFile)
	if _, err := os.Stat(path); err != nil {
		return nil
	}
	what := "a run's checkpoint"
	if c, err := ReadCheckpointInfo(path); err == nil {
		what = fmt.Sprintf("the checkpoint of a run at step %d", c.Step)
	}
	return fmt.Errorf("train: %s holds %s (%s): continue it with -resume, or start afresh with -overwrite (its metrics are replaced)", cfg.OutDir, what, path)
}

// restore loads OutDir/checkpoint.gob into the run, refusing a checkpoint of
// another model, optimizer, dtype or configuration.
func (r *run) restore() error {
	path := filepath.Join(r.cfg.OutDir, checkpointFile)
	var reserve func(*optim.StateTensor) int
	if rs, ok := r.opt.(stateReserver); ok {
		reserve = rs.Reserve
	}
	c, err := readCheckpoint(path, true, meminfo.Source(r.cfg.Memory), reserve)
	if err != nil {
		return fmt.Errorf("train: resume: %w", err)
	}
	key, err := modelKey(c.Model)
	if err != nil {
		return fmt.Errorf("train: resume: %s: %w", path, err)
	}
	switch {
	case key != r.modelKey:
		return fmt.Errorf("train: resume: %s was made for another model (%s), not %s", path, key, r.modelKey)
	case c.Optimizer != r.opt.Name():
		return fmt.Errorf("train: resume: %s was made for optimizer %s, not %s", path, c.Optimizer, r.opt.Name())
	case c.Dtype != r.cfg.Dtype.String():
		return fmt.Errorf("train: resume: %s holds %s parameters, not %s", path, c.Dtype, r.cfg.Dtype)
	}
	var rc RunConfig
	if err := json.Unmarshal(c.Config, &rc); err != nil {
		return fmt.Errorf("train: resume: %s: the recorded configuration: %w", path, err)
	}
	if r.training { // an analysis only reads the state
		if err := r.checkResumable(path, rc); err != nil {
			return err
		}
	}
	vals := optim.State{Tensors: c.Params}
	params := r.eng.Params()
	loaded, err := vals.ImportSlot("train: resume: "+path, "value", params)
	if err != nil {
		return err
	}
	bns, err := importRunningStats(r.model, vals, "train: resume: "+path)
	if err != nil {
		return err
	}
	load := r.opt.LoadState
	if t, ok := r.opt.(stateTaker); ok {
		load = t.TakeState // c is dropped after this: no second copy of M-FAC's window
	}
	if err := load(params, c.Opt); err != nil {
		return fmt.Errorf("train: resume: %s: %w", path, err)
	}
	if err := r.it.Restore(c.Data); err != nil {
		return fmt.Errorf("train: resume: %s: %w", path, err)
	}
	if err := r.samplerPCG.UnmarshalBinary(c.Blobs["sampler"]); err != nil {
		return fmt.Errorf("train: resume: %s: sampler state: %w", path, err)
	}
	if err := r.hessPCG.UnmarshalBinary(c.Blobs["hessian"]); err != nil {
		return fmt.Errorf("train: resume: %s: hessian state: %w", path, err)
	}
	sums, err1 := c.blobFloats("epoch_sums", 3) // checked by readCheckpoint
	last, err2 := c.blobFloats("last_eval", 2)
	var dropStep []float64
	var err3 error
	if r.model.DropoutState() != nil {
		dropStep, err3 = c.blobFloats("dropout_step", 1)
	}
	if err := errors.Join(err1, err2, err3); err != nil {
		return fmt.Errorf("train: resume: %s: %w", path, err)
	}
	// Everything is checked: now overwrite the live state.
	for i, p := range params {
		num.CopyInto(p.Value, loaded[i])
	}
	for _, b := range bns {
		num.CopyInto(b.dst, b.src)
	}
	r.step, r.epoch, r.best, r.wall = c.Step, c.Epoch, c.Best, c.Wall
	r.evals, r.evalStep = c.Evals, c.EvalStep
	if ds := r.model.DropoutState(); ds != nil {
		ds.SetStep(uint64(dropStep[0])) // the masks continue where they were
	}
	r.epLoss, r.epAcc, r.epSteps = sums[0], sums[1], int(sums[2])
	r.res.FinalTestLoss, r.res.FinalTestAcc, r.res.BestTestAcc = last[0], last[1], c.Best
	r.saved = true
	return nil
}

// tensorCopy is one copy of a checkpoint's tensor into the live model.
type tensorCopy struct{ dst, src *dense }

// importRunningStats reads every batch-norm layer's running mean and
// variance from vals, checked against the model's, and returns the copies
// that load them (made by the caller once everything is checked). All
// layers are imported at once: ImportSlot refuses a slot holding tensors of
// parameters it was not given.
func importRunningStats(model *nn.Model, vals optim.State, prefix string) ([]tensorCopy, error) {
	var bnParams []optim.Param
	var varis []*dense
	for _, name := range model.BatchNormNames() {
		mean, vari, err := model.RunningStats(name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", prefix, err)
		}
		bnParams = append(bnParams, optim.Param{Name: name, Value: mean})
		varis = append(varis, vari)
	}
	if len(bnParams) == 0 {
		return nil, nil
	}
	m, err := vals.ImportSlot(prefix, "running_mean", bnParams)
	if err != nil {
		return nil, err
	}
	v, err := vals.ImportSlot(prefix, "running_var", bnParams)
	if err != nil {
		return nil, err
	}
	var out []tensorCopy
	for i, p := range bnParams {
		out = append(out, tensorCopy{p.Value, m[i]}, tensorCopy{varis[i], v[i]})
	}
	return out, nil
}

// logChecks returns the checks of a resumed run's metrics files against its
// checkpoint (see resumeRecords): steps.jsonl holds steps 1 to Step, in
// order, each in its epoch; epochs.jsonl holds the Evals evaluations at
// increasing steps up to Step, each in its epoch, the last at EvalStep.
func (r *run) logChecks() (*logVerify[StepRecord], *logVerify[EpochRecord]) {
	per := r.it.BatchesPerEpoch()
	steps := &logVerify[StepRecord]{n: r.step, check: func(i int, s StepRecord) error {
		switch {
		case s.Step < i+1:
			return fmt.Errorf("step %d where step %d was expected: a duplicated or out-of-order record", s.Step, i+1)
		case s.Step > i+1:
			return fmt.Errorf("step %d where step %d was expected: records missing or out of order", s.Step, i+1)
		case s.Epoch != (s.Step-1)/per+1:
			return fmt.Errorf("step %d in epoch %d, but with %d steps an epoch it is in epoch %d", s.Step, s.Epoch, per, (s.Step-1)/per+1)
		}
		return nil
	}}
	prev := 0
	evals := &logVerify[EpochRecord]{n: r.evals, check: func(i int, e EpochRecord) error {
		switch {
		case e.Step <= prev || e.Step > r.step:
			return fmt.Errorf("an evaluation at step %d, out of order: after the previous one's step %d and at most the checkpoint's step %d", e.Step, prev, r.step)
		case e.Epoch != (e.Step+per-1)/per:
			return fmt.Errorf("an evaluation at step %d of epoch %d, but with %d steps an epoch that step is in epoch %d", e.Step, e.Epoch, per, (e.Step+per-1)/per)
		case i == r.evals-1 && e.Step != r.evalStep:
			return fmt.Errorf("the last evaluation up to the checkpoint is at step %d, but the checkpoint records it at step %d", e.Step, r.evalStep)
		}
		prev = e.Step
		return nil
	}}
	return steps, evals
}

// verifyLogs verifies a resumed run's metrics files up to its checkpoint
// (logChecks), before anything in OutDir is written, and returns the bytes
// of steps.jsonl and epochs.jsonl to keep. A repair (lines after the
// checkpoint dropped) is printed to Notices (or Progress) once both files
// are verified.
func (r *run) verifyLogs() (steps, evals int64, err error) {
	vs, ve := r.logChecks()
	steps, n1, err := resumeRecords(filepath.Join(r.cfg.OutDir, "steps.jsonl"), vs)
	if err != nil {
		return 0, 0, err
	}
	evals, n2, err := resumeRecords(filepath.Join(r.cfg.OutDir, "epochs.jsonl"), ve)
	if err != nil {
		return 0, 0, err
	}
	w := r.cfg.Notices
	if w == nil {
		w = r.cfg.Progress
	}
	for _, n := range []string{n1, n2} {
		if n != "" && w != nil {
			fmt.Fprintln(w, n)
		}
	}
	return steps, evals, nil
}

// modelKey returns the checkpoint's model key (Checkpoint.Model) as this
// version writes it, the JSON of the model's DAG. A checkpoint written
// before the layer list became a shorthand for a DAG (issue 20) keys a
// layer-list model by the list's JSON: it is converted (nn.ParseModel), so
// that such a checkpoint resumes the same model.
func modelKey(key string) (string, error) {
	d, err := nn.ParseModel([]byte(key))
	if err != nil {
		return "", fmt.Errorf("the checkpoint's model: %w", err)
	}
	b, err := json.Marshal(d)
	if err != nil {
		return "", fmt.Errorf("the checkpoint's model: %w", err)
	}
	return string(b), nil
}

// UnmarshalJSON decodes a recorded configuration, the format of this
// version or an earlier one: before issue 20 a layer-list model was
// recorded under "model" as the list, and a DAG model under "dag" (with an
// empty list under "model"). Either is converted to the one model field
// (nn.ParseModel); a model that does not parse is an error naming it.
func (rc *RunConfig) UnmarshalJSON(b []byte) error {
	type plain RunConfig // RunConfig without this method
	var v struct {
		plain
		Model json.RawMessage `json:"model"`
		DAG   json.RawMessage `json:"dag"` // before issue 20: a DAG model
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*rc = RunConfig(v.plain)
	model, what := v.Model, `"model"`
	if len(v.DAG) > 0 && string(v.DAG) != "null" {
		model, what = v.DAG, `"dag" (the format before issue 20)`
	}
	if len(model) == 0 || string(model) == "null" {
		return errors.New(`no "model" recorded`)
	}
	d, err := nn.ParseModel(model)
	if err != nil {
		return fmt.Errorf("the model recorded under %s: %w", what, err)
	}
	rc.Model = d
	return nil
}
