export * from './fields';
export { parseConfig, formatIssues, parseExpiry, checkCidr, toRfc3339 } from './parse';
export type { PersistConfig, ConfigIssue, ParseResult } from './parse';
export { loadConfig, loadConfigOrExit, ConfigError, CONFIG_FILE_NAME, PROJECT_ROOT } from './load';
export { configReferenceTable } from './reference';
export type { LoadOptions } from './load';
export { checkCloudsYaml, cloudsYamlCandidates, cloudsYamlWarnings } from './clouds';
