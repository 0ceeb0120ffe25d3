// Step outputs declared with zod schemas: an object of schemas or an object schema (refined,
// with defaults), `stepRef.result` typed from them, and the returned value checked against them.
import { job, step, workflow, z } from '@kici-dev/sdk';

const build = step('build', {
  outputs: { version: z.string(), files: z.array(z.string()), size: z.number().int().optional() },
  run: async ({ $ }) => ({ version: (await $`git describe`).stdout.trim(), files: ['dist/app.js'] }),
});

const Sbom = z
  .object({ format: z.enum(['spdx', 'cyclonedx']), packages: z.number().default(0) })
  .refine((sbom) => sbom.packages >= 0, { message: 'packages must not be negative' });

const sbom = step({ name: 'sbom', outputs: Sbom, run: () => ({ format: 'spdx' as const }) });

const retried = step('retried', {
  outputs: z.object({ attempt: z.number() }),
  retry: 2,
  timeout: 60_000,
  run: async () => ({ attempt: 1 }),
});

export default workflow('step-outputs', {
  jobs: [
    job('release', {
      runsOn: 'kici:os:linux',
      steps: [
        build,
        sbom,
        retried,
        step('publish', async ({ log }) => {
          const version: string = build.result.version;
          const files: string[] = build.result.files;
          const size: number | undefined = build.result.size;
          const format: 'spdx' | 'cyclonedx' = sbom.result.format;
          const packages: number = sbom.result.packages;
          const attempt: number = retried.result.attempt;
          log.info(version, files, size, format, packages, attempt);
        }),
      ],
    }),
  ],
});
