export * from './fields';
export { parseConfig, formatIssues } from './parse';
export { expiryWarnings, parseExpiry, toRfc3339 } from './expiry';
export { checkCidr } from './cidr';
export type { PersistConfig, ConfigIssue, ParseResult } from './parse';
export { loadConfig, loadConfigOrExit, ConfigError, CONFIG_FILE_NAME, PROJECT_ROOT } from './load';
export { configReferenceTable } from './reference';
export type { LoadOptions } from './load';
export { checkCloudsYaml, cloudsYamlCandidates, cloudsYamlWarnings } from './clouds';
