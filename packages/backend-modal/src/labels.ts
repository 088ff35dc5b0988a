/** Tags on every Modal sandbox this backend creates: what sweep and re-attach look for. */
export const MANAGED_LABEL = 'io.agentbox.managed';
/** The agentbox sandbox id (one handle keeps it across rollbacks, which change the Modal sandbox). */
export const ID_LABEL = 'io.agentbox.id';
