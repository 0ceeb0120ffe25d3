// The vendored zod behind `z`: schemas, inferred types, parsing and its errors.
import { job, step, workflow, z } from '@kici-dev/sdk';

const Release = z.object({
  version: z.string().regex(/^\d+\.\d+\.\d+$/),
  channel: z.enum(['stable', 'beta']).default('stable'),
  notes: z.array(z.string()).optional(),
});
type Release = z.infer<typeof Release>;

const check = step('check', async ({ log }) => {
  const parsed = Release.safeParse({ version: '1.2.3' });
  if (!parsed.success) {
    const issues: z.ZodIssue[] = parsed.error.issues;
    log.error(issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; '));
    return;
  }
  const release: Release = parsed.data;
  const channel: 'stable' | 'beta' = release.channel;
  log.info(release.version, channel, release.notes?.length ?? 0);
});

export default workflow('zod', { jobs: [job('release', { runsOn: 'kici:os:linux', steps: [check] })] });
