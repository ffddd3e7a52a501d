// Child-process entry of downloadToCacheSync: runs one download and reports the outcome in a JSON file.
import { writeFileSync } from 'node:fs';
import { type DownloadOptions, download } from '../utils/download.js';

const job = JSON.parse(process.argv[2] ?? '{}') as { url: string; dest: string; options: DownloadOptions; resultFile: string };
download(job.url, job.dest, job.options).then(
  () => writeFileSync(job.resultFile, JSON.stringify({ ok: true })),
  (e: Error) => {
    writeFileSync(job.resultFile, JSON.stringify({ error: e.message }));
    process.exitCode = 1;
  },
);
