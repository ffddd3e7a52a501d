// The training toolkit: fit() (the tutorial's loop with progress, metrics,
// charts, evaluation and exact checkpoint/resume), and its parts.
export { fit } from './trainer.js';
export type { FitOptions, FitResult } from './trainer.js';
export { AMP_SETTINGS } from './precision.js';
export type { AmpSetting, AmpMode } from './precision.js';
export { evaluate, formatEvaluation, evaluationRecord } from './evaluate.js';
export type { Evaluation, EvaluateOptions } from './evaluate.js';
export { saveCheckpoint, loadCheckpoint, Checkpoint, CHECKPOINT_FORMAT } from './checkpoint.js';
export type { CheckpointContents } from './checkpoint.js';
export { accuracy, confusionMatrix, perClassAccuracy, ConfusionMatrix } from './metrics.js';
export { MetricsLog } from './metricsLog.js';
export type { MetricsRecord, BatchRecord, EpochRecord, EvalRecord } from './metricsLog.js';
export { ProgressBar } from './progress.js';
export type { ProgressBarOptions, ProgressStats } from './progress.js';
export { renderChartHtml, writeChartHtml } from './chart.js';
export type { ChartHtmlOptions } from './chart.js';
export { startLiveServer } from './live.js';
export type { LiveServer, LiveServerOptions } from './live.js';
