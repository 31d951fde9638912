// Package train is the training loop of curvopt: it turns a Config (model
// spec, dataset, optimizer name and hyperparameters, budget, schedule,
// clipping, parameter groups, output directory) into a run with metrics
// (steps.jsonl/csv, epochs.jsonl/csv), checkpoints that resume
// bit-identically, and optional sharpness tracking and Hessian analysis.
// cmd/train is its command line.
//
// # One step
//
// Step holds the choreography of one optimization step, and data flows one
// way through it:
//
//	req := opt.Request(params)               // optim.Requester: what curvature the step wants at θ (H·z), or nil
//	loss := eng.LossGradHVP(req.V, req.Out)  // one graph run: loss, ∇L and H·z (or eng.LossGrad())
//	req.Answer()                              // the product is handed over as data
//	optim.ClipGlobalNorm(params, clip)        // optional gradient transformation
//	opt.Step(params, eng)                     // in-place update; a query after it (SophiaG's ĝ) runs at the new θ
//
// The engine (hessian.Engine, seen here through the Oracle interface) knows
// nothing of optimizers, and optimizers know nothing of graphs. Run adds the
// learning-rate schedule (Optimizer.SetLR before each step), the batch
// iterator, evaluation (the engine's EvalLoss: loss and accuracy from the
// evaluation graph) and the records.
//
// # Data parallel
//
// With Config.Comm of several ranks (mpi.World under mpirun, from a build
// with -tags mpi) the run is one rank of a data-parallel job: every rank
// steps the same global batches and takes its contiguous share (Share);
// Step runs on a dist oracle that all-reduces the loss, the gradient and
// every curvature answer, each rank's weighted by its rows over the global
// batch, so every rank applies the single process's update (up to the
// order of float sums). Hutchinson probes are the optimizer's, the same on
// every rank; sampled labels are drawn per global row. Rank 0 alone writes;
// the checkpoint does not depend on the number of ranks. Config.Shard
// splits the optimizer state over the ranks (ZeRO stage 1, shard.go).
//
// # Parameter groups
//
// By default the optimizer's weight decay applies to weight matrices and
// convolution kernels only; biases and normalisation parameters form a
// second group without it (optim.DecayGroups, the nanoGPT recipe Sophia was
// tuned with). Config.DecayAll (cmd/train -decay-all) restores a single
// group. The groups are part of the optimizer state, so checkpoints record
// them.
//
// # Checkpoints and resume
//
// A checkpoint is read in memory bounded by what the file really holds
// (LoadCheckpoint): the metadata is capped, each section's checksum is
// streamed before the section is allocated, and the values are checked
// against the memory available. Its meaning is then checked: the step,
// epoch and evaluation counters agree with each other and with the data
// iterator's position, every float is finite, every tensor value too. A
// resume verifies steps.jsonl and epochs.jsonl up to the checkpoint before
// writing anything: a gap, duplicate or disorder there is refused (nothing
// is changed); lines after the checkpoint (a run killed before its next
// checkpoint) are dropped, and the repair is printed to Config.Notices (or
// Config.Progress when Notices is nil).
//
// Plots are not made here: Analyze returns and writes numbers, and
// cmd/train draws them with hessian/spectrum/plot, so importing train does
// not pull in gonum/plot.
package train
