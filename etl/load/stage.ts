import type { Command } from 'commander';
import { EtlError } from '../errors';
import type { Stage } from '../stage';

// Placeholder until the stage is implemented; keeps the CLI compiling.
export const loadStage: Stage = {
  name: 'load',
  description: 'load stage (not implemented yet)',
  addOptions: (cmd: Command) => cmd,
  run: async () => {
    throw new EtlError('the load stage is not implemented yet');
  },
};
