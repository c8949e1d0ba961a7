// Recent authentication: an action the API guards (a decommission, a plan
// change, granting owner, minting a token…) is refused with 403
// REAUTHENTICATION_REQUIRED when the session's person has not proved who
// they are for a while. confirmIdentity asks them to, through the one
// dialog App.svelte mounts (Reauthenticate.svelte), and tells whether they
// did; requests that need it at once share the one question.

export const reauth = $state<{ settle: ((confirmed: boolean) => void) | null }>({ settle: null });

let asking: Promise<boolean> | null = null;

export function confirmIdentity(): Promise<boolean> {
  asking ??= new Promise<boolean>((resolve) => {
    reauth.settle = (confirmed) => {
      reauth.settle = null;
      asking = null;
      resolve(confirmed);
    };
  });
  return asking;
}
