// The child process behind downloadSync: runs one download() and writes its outcome to the job's result file.
import { writeFileSync } from 'node:fs';
import { type DownloadJob, type DownloadOutcome, download } from './download.js';

const job = JSON.parse(process.argv[2] ?? '{}') as DownloadJob;
const report = (outcome: DownloadOutcome): void => writeFileSync(job.resultFile, JSON.stringify(outcome));
download(job.url, job.dest, job.options).then(
  (ok) => report({ ok }),
  (e: Error) => {
    report({ error: e.message });
    process.exitCode = 1;
  },
);
