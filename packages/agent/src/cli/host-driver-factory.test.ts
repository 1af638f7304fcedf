import { describe, expect, it } from 'vitest';
import { userScopeProblem } from './host-driver-factory.js';

describe('userScopeProblem', () => {
  it("refuses root: systemctl --user would manage root's own user manager, not the account's", () => {
    expect(userScopeProblem({ XDG_RUNTIME_DIR: '/run/user/0' }, 0)).toBe(
      'scope user: the agent runs as root; run it as the account whose services it manages (User= in podfleet-agent.service)',
    );
  });

  it('needs the runtime directory, where systemctl --user and Podman find the manager', () => {
    expect(userScopeProblem({}, 1000)).toBe(
      "scope user: XDG_RUNTIME_DIR is not set: the account's runtime directory (/run/user/1000), where its service manager listens",
    );
    expect(userScopeProblem({ XDG_RUNTIME_DIR: '' }, 1000)).toMatch(/XDG_RUNTIME_DIR is not set/);
  });

  it('takes an account with its runtime directory', () => {
    expect(userScopeProblem({ XDG_RUNTIME_DIR: '/run/user/1000' }, 1000)).toBeUndefined();
  });
});
