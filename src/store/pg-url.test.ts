import { describe, expect, it } from 'vitest';
import { describePgUrl, pgTarget } from './pg-url.js';

describe('pgTarget: libpq connection URIs for postgres.js', () => {
  it('leaves a URL with a host in its authority as it is', () => {
    expect(pgTarget('postgres://u:p@db.internal:5433/cache?sslmode=require')).toEqual({ url: 'postgres://u:p@db.internal:5433/cache?sslmode=require' });
  });

  it('takes ?host= and ?port= out of the query (they are not server settings)', () => {
    expect(pgTarget('postgresql:///cache?host=/var/run/postgresql&port=5433&sslmode=disable')).toEqual({
      url: 'postgresql:///cache?sslmode=disable',
      host: '/var/run/postgresql',
      port: 5433,
    });
  });

  it('gives a URL with credentials but no host a placeholder host, so that it parses; the option wins', () => {
    const t = pgTarget('postgres://postgres:s3cret@/cache?host=/tmp/pg');
    expect(t).toEqual({ url: 'postgres://postgres:s3cret@localhost/cache', host: '/tmp/pg' });
    expect(() => new URL(t.url)).not.toThrow();
  });

  it('reads a percent-encoded socket directory in the authority, with or without a port', () => {
    expect(pgTarget('postgresql://%2Fvar%2Frun%2Fpostgresql/cache')).toEqual({ url: 'postgresql:///cache', host: '/var/run/postgresql' });
    expect(pgTarget('postgresql://me@%2Ftmp%2Fpg:6000/cache')).toEqual({ url: 'postgresql://me@localhost/cache', host: '/tmp/pg', port: 6000 });
  });

  it('takes a host name from ?host= as well', () => {
    expect(pgTarget('postgres://u@/cache?host=db.internal')).toEqual({ url: 'postgres://u@localhost/cache', host: 'db.internal' });
  });

  it('keeps a database-less URL parseable', () => {
    expect(pgTarget('postgresql://?host=/tmp/pg')).toEqual({ url: 'postgresql:///', host: '/tmp/pg' });
  });
});

describe('describePgUrl', () => {
  it('hides the password and names the socket actually used', () => {
    expect(describePgUrl('postgres://postgres:s3cret@/cache?host=/tmp/pg&port=6000')).toBe('postgres://postgres:***@localhost/cache via socket /tmp/pg/.s.PGSQL.6000');
    expect(describePgUrl('postgres://u:s3cret@db:5432/cache')).toBe('postgres://u:***@db:5432/cache');
    // The URL's own port, where ?port= does not say otherwise.
    expect(describePgUrl('postgres://u@db:5433/cache?host=/tmp/pg')).toBe('postgres://u@db:5433/cache via socket /tmp/pg/.s.PGSQL.5433');
  });

  it('says so when the URL cannot be parsed, without echoing it', () => {
    expect(describePgUrl('postgres://u:s3cret@[bad/cache')).toBe('(unparsable URL)');
  });
});
