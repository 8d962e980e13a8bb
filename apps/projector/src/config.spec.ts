import { loadProjectorConfig } from './config';

describe('projector config', () => {
  it('has working defaults for every variable', () => {
    expect(loadProjectorConfig({})).toMatchObject({
      DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/flowruns',
      KAFKA_BROKERS: ['127.0.0.1:9092'],
      KAFKA_TOPIC: 'flow-run-events',
      PROJECTOR_PORT: 3002,
      PROJECTOR_HOST: '127.0.0.1',
      PROJECTOR_GROUP_ID: 'flow-runs-projector',
      PROJECTOR_LAG_INTERVAL_MS: 15000,
    });
  });

  it('reads the environment', () => {
    const c = loadProjectorConfig({ PROJECTOR_PORT: '4002', PROJECTOR_GROUP_ID: 'rebuild-7', KAFKA_BROKERS: 'a:1, b:2' });
    expect(c).toMatchObject({ PROJECTOR_PORT: 4002, PROJECTOR_GROUP_ID: 'rebuild-7', KAFKA_BROKERS: ['a:1', 'b:2'] });
  });

  it.each([
    ['PROJECTOR_PORT', 'not-a-port'],
    ['PROJECTOR_PORT', '70000'],
    ['PROJECTOR_GROUP_ID', ''],
    ['DATABASE_URL', 'nope'],
    ['PROJECTOR_LAG_INTERVAL_MS', '5'],
  ])('fails fast naming %s when it is %j', (name, value) => {
    expect(() => loadProjectorConfig({ [name]: value })).toThrow(new RegExp(`^Invalid configuration:\\n\\s+${name}: `));
  });
});
