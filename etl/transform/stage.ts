import type { Command } from 'commander';
import { EtlError } from '../errors';
import type { Stage } from '../stage';

// Placeholder until the stage is implemented; keeps the CLI compiling.
export const transformStage: Stage = {
  name: 'transform',
  description: 'transform stage (not implemented yet)',
  addOptions: (cmd: Command) => cmd,
  run: async () => {
    throw new EtlError('the transform stage is not implemented yet');
  },
};
