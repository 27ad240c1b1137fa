#!/usr/bin/env node
// Engine supervisor: the only thing standing between a killed lab run and an orphan server.
//
//   node scripts/supervise.mjs <config-json>
//
// The parent (a lab run or the test run) starts this with stdin as a pipe and keeps the pipe
// open for as long as it wants the engine. When the pipe closes, for any reason (normal stop,
// crash, SIGKILL of the parent), the supervisor stops the engine process group, waits for it,
// removes the engine's temp dir and exits. It runs in its own process group so a terminal's
// Ctrl-C reaches the lab run, which then stops engines in order.
//
// config: { cmd, args, env?, cwd?, uid?, gid?, stopSignal?, stopTimeoutMs?, cleanup?: string[], logFile }
import { spawn } from 'node:child_process';
import { openSync, readFileSync, rmSync } from 'node:fs';

const config = JSON.parse(process.argv[2]);
// Without `cmd` the supervisor guards only temp dirs: removed when the parent goes away.
const guardOnly = !config.cmd;
const log = guardOnly ? 'ignore' : openSync(config.logFile, 'a');
const child = guardOnly ? null : spawn(config.cmd, config.args, {
  cwd: config.cwd,
  env: { ...process.env, ...(config.env ?? {}) },
  stdio: ['ignore', log, log],
  uid: config.uid,
  gid: config.gid,
  detached: true, // its own group: we can signal the server and everything it forked
});

let stopping = false;
let exited = guardOnly;
child?.on('exit', (code, signal) => {
  exited = true;
  if (!stopping) {
    // The engine died on its own: tell the parent (it reads our stdout) and clean up.
    // Send the log's tail first: the cleanup below deletes the log with the temp dir.
    let tail = '';
    try {
      tail = readFileSync(config.logFile, 'utf8').trim().split('\n').slice(-4).join(' | ').slice(-800);
    } catch {
      /* no log */
    }
    process.stdout.write(JSON.stringify({ event: 'exit', code, signal, tail }) + '\n');
  }
  finish();
});
child?.on('error', (err) => {
  process.stdout.write(JSON.stringify({ event: 'error', message: String(err.message) }) + '\n');
  exited = true;
  finish();
});
process.stdout.write(JSON.stringify({ event: 'started', pid: child?.pid ?? null }) + '\n');

function killGroup(sig) {
  if (!child) return;
  try {
    process.kill(-child.pid, sig);
  } catch {
    /* gone */
  }
}

function stop() {
  if (stopping) return;
  stopping = true;
  if (exited) return finish();
  killGroup(config.stopSignal ?? 'SIGTERM');
  setTimeout(() => killGroup('SIGKILL'), config.stopTimeoutMs ?? 10000).unref();
}

let finished = false;
function finish() {
  if (finished) return;
  if (!exited) return;
  finished = true;
  killGroup('SIGKILL'); // stragglers the server forked
  for (const dir of config.cleanup ?? []) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      /* best effort */
    }
  }
  process.exit(0);
}

process.stdin.on('data', (d) => {
  if (String(d).includes('stop')) stop();
});
process.stdin.on('end', stop);
process.stdin.on('close', stop);
process.stdin.on('error', stop);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, stop);
