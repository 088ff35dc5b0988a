/** Tags on every Vercel sandbox this backend creates: what sweep and re-attach look for. */
export const MANAGED_LABEL = 'io.agentbox.managed';
/** The agentbox sandbox id (one handle keeps it across rollbacks, which change the Vercel sandbox). */
export const ID_LABEL = 'io.agentbox.id';
/** Vercel allows this many tags on a sandbox; two are the backend's own. */
export const MAX_TAGS = 5;
