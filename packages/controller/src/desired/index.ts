export { Labels, LabelKey, LabelValue, labelKeyProblem, labelValueProblem } from './labels.js';
export {
  SelectorText,
  formatSelector,
  matchesSelector,
  parseSelector,
  type Requirement,
  type Selector,
  type SelectorParse,
} from './selector.js';
export { groupsOf, membership, rankGroups, type Group, type LabeledDevice } from './membership.js';
export { PinnedImage, pinProblem } from './pins.js';
export {
  chooseImage,
  type ImageChoice,
  type ImageRule,
  type PinClaim,
  type Pins,
  type RolloutImage,
  type RolloutOverrides,
  type ServiceTable,
} from './image-rule.js';
export {
  resolveDesiredState,
  resolveFleet,
  type AssignmentClaim,
  type DesiredSources,
  type DesiredState,
  type DesiredStateInput,
  type Revision,
  type ServiceConflict,
  type ServiceResolution,
} from './resolve.js';
export { buildManifest, manifestChanged, nextManifest, type ManifestContent } from './manifest.js';
