import { request } from 'node:http';
import { existsSync } from 'node:fs';

/**
 * Whether a Docker daemon answers, checked with one `GET /_ping` on its socket (or DOCKER_HOST
 * over TCP), without loading testcontainers. Where the docker client exists but no daemon runs,
 * this answers false within `timeoutMs`.
 */
export function dockerAnswers(env: NodeJS.ProcessEnv = process.env, timeoutMs = 1500): Promise<boolean> {
  const host = env.DOCKER_HOST;
  let target: { socketPath?: string; host?: string; port?: number };
  if (host && host.startsWith('tcp://')) {
    const u = new URL(host.replace('tcp://', 'http://'));
    target = { host: u.hostname, port: Number(u.port || 2375) };
  } else {
    const socketPath = host?.startsWith('unix://') ? host.slice('unix://'.length) : '/var/run/docker.sock';
    if (!existsSync(socketPath)) return Promise.resolve(false);
    target = { socketPath };
  }
  return new Promise((resolve) => {
    const req = request({ ...target, path: '/_ping', method: 'GET', timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.on('error', () => resolve(false));
    req.end();
  });
}
