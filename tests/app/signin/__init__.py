"""The sign-in test's harness: a local OpenID provider, secrets and roles files, a browser spy."""
