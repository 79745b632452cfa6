// Drives Riffle with the AWS SDK for Java v2, as shipped with the Kinesis
// Client Library. Compiled and run by tests/python/test_java.py; prints one
// JSON object per line on stdout for the test to assert on.
//
//   java RiffleJava sync <endpoint> <stream>
//       KinesisClient (sync, Apache HTTP, the SDK's default protocol for
//       Kinesis): create a 2-shard stream, wait for it, put records, list
//       shards, read every shard from TRIM_HORIZON.
//   java RiffleJava efo <endpoint> <stream> <truststore|-> <count>
//       KinesisAsyncClient (Netty, HTTP/2; h2c for http://, TLS with ALPN for
//       https://): register a consumer, SubscribeToShard at LATEST, put
//       <count> records once subscribed, print every record received.

import java.io.FileInputStream;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.security.KeyStore;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import java.net.Socket;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;

import javax.net.ssl.SSLEngine;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509ExtendedTrustManager;

import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.core.SdkBytes;
import software.amazon.awssdk.core.interceptor.Context;
import software.amazon.awssdk.core.interceptor.ExecutionAttributes;
import software.amazon.awssdk.core.interceptor.ExecutionInterceptor;
import software.amazon.awssdk.core.interceptor.SdkExecutionAttribute;
import software.amazon.awssdk.http.Protocol;
import software.amazon.awssdk.http.ProtocolNegotiation;
import software.amazon.awssdk.http.apache.ApacheHttpClient;
import software.amazon.awssdk.http.nio.netty.NettyNioAsyncHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.retries.api.BackoffStrategy;
import software.amazon.awssdk.services.kinesis.KinesisAsyncClient;
import software.amazon.awssdk.services.kinesis.KinesisClient;
import software.amazon.awssdk.services.kinesis.model.*;
import software.amazon.awssdk.services.kinesis.model.Record;

public class RiffleJava {

    static final StaticCredentialsProvider CREDS =
            StaticCredentialsProvider.create(AwsBasicCredentials.create("AKIDTEST", "secret"));

    // ------------------------------------------------------------ JSON lines

    static String q(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') b.append('\\').append(c);
            else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
            else b.append(c);
        }
        return b.append('"').toString();
    }

    static String json(Object v) {
        if (v == null) return "null";
        if (v instanceof String) return q((String) v);
        if (v instanceof Number || v instanceof Boolean) return v.toString();
        if (v instanceof Map) {
            StringBuilder b = new StringBuilder("{");
            for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
                if (b.length() > 1) b.append(',');
                b.append(q(e.getKey().toString())).append(':').append(json(e.getValue()));
            }
            return b.append('}').toString();
        }
        if (v instanceof List) {
            StringBuilder b = new StringBuilder("[");
            for (Object o : (List<?>) v) {
                if (b.length() > 1) b.append(',');
                b.append(json(o));
            }
            return b.append(']').toString();
        }
        throw new IllegalArgumentException(v.getClass().toString());
    }

    static synchronized void emit(Object... kv) {
        Map<String, Object> m = new TreeMap<>();
        for (int i = 0; i < kv.length; i += 2) m.put((String) kv[i], kv[i + 1]);
        System.out.println(json(m));
        System.out.flush();
    }

    static String b64(SdkBytes b) {
        return Base64.getEncoder().encodeToString(b.asByteArray());
    }

    // ----------------------------------------------------- wire observation

    /** Reports the Content-Type of every request the SDK sends and of every
     *  response the server returns, per operation. */
    static class WireLog implements ExecutionInterceptor {
        final Map<String, Object> seen = new TreeMap<>();

        @Override
        public void afterTransmission(Context.AfterTransmission ctx, ExecutionAttributes attrs) {
            String op = attrs.getAttribute(SdkExecutionAttribute.OPERATION_NAME);
            String req = ctx.httpRequest().firstMatchingHeader("Content-Type").orElse("");
            String resp = ctx.httpResponse().firstMatchingHeader("Content-Type").orElse("");
            synchronized (seen) {
                seen.put(op, List.of(req, resp));
            }
        }

        void report() {
            synchronized (seen) {
                emit("event", "wire", "operations", new TreeMap<>(seen));
            }
        }
    }

    // ------------------------------------------------------------------ sync

    static byte[] payload(int i) {
        // Every byte value, plus per-record bytes, so a text or base64
        // mangling anywhere shows up.
        byte[] b = new byte[256 + 4];
        for (int j = 0; j < 256; j++) b[j] = (byte) j;
        b[256] = (byte) 0xff;
        b[257] = (byte) 0x00;
        b[258] = (byte) i;
        b[259] = (byte) (i >> 8);
        return b;
    }

    static void sync(String endpoint, String stream) {
        WireLog wire = new WireLog();
        try (KinesisClient k = KinesisClient.builder()
                .endpointOverride(URI.create(endpoint))
                .region(Region.US_EAST_1)
                .credentialsProvider(CREDS)
                .httpClientBuilder(ApacheHttpClient.builder())
                .overrideConfiguration(c -> c.addExecutionInterceptor(wire))
                .build()) {
            k.createStream(r -> r.streamName(stream).shardCount(2));
            StreamDescription d = k.waiter().waitUntilStreamExists(r -> r.streamName(stream),
                            o -> o.backoffStrategyV2(BackoffStrategy.fixedDelay(Duration.ofMillis(200))).maxAttempts(100))
                    .matched().response().orElseThrow().streamDescription();
            emit("event", "active", "status", d.streamStatusAsString(), "shards", d.shards().size());

            List<Object> puts = new ArrayList<>();
            for (int i = 0; i < 4; i++) {
                PutRecordResponse p = k.putRecord(PutRecordRequest.builder().streamName(stream)
                        .partitionKey("key-" + i).data(SdkBytes.fromByteArray(payload(i))).build());
                puts.add(Map.of("partition_key", "key-" + i, "data", b64(SdkBytes.fromByteArray(payload(i))),
                        "shard_id", p.shardId(), "sequence_number", p.sequenceNumber()));
            }
            List<PutRecordsRequestEntry> batch = new ArrayList<>();
            for (int i = 4; i < 8; i++) {
                batch.add(PutRecordsRequestEntry.builder().partitionKey("key-" + i)
                        .data(SdkBytes.fromByteArray(payload(i))).build());
            }
            PutRecordsResponse pr = k.putRecords(r -> r.streamName(stream).records(batch));
            for (int i = 0; i < batch.size(); i++) {
                PutRecordsResultEntry e = pr.records().get(i);
                puts.add(Map.of("partition_key", "key-" + (i + 4), "data", b64(batch.get(i).data()),
                        "shard_id", e.shardId(), "sequence_number", e.sequenceNumber()));
            }
            emit("event", "put", "failed", pr.failedRecordCount(), "records", puts);

            List<Shard> shards = k.listShards(r -> r.streamName(stream)).shards();
            List<Object> shardOut = new ArrayList<>();
            for (Shard s : shards) {
                shardOut.add(Map.of("shard_id", s.shardId(),
                        "starting_hash_key", s.hashKeyRange().startingHashKey(),
                        "ending_hash_key", s.hashKeyRange().endingHashKey(),
                        "starting_sequence_number", s.sequenceNumberRange().startingSequenceNumber()));
            }
            emit("event", "shards", "shards", shardOut);

            for (Shard s : shards) {
                String it = k.getShardIterator(r -> r.streamName(stream).shardId(s.shardId())
                        .shardIteratorType(ShardIteratorType.TRIM_HORIZON)).shardIterator();
                GetRecordsResponse g = k.getRecords(r -> r.shardIterator(it).limit(100));
                List<Object> recs = new ArrayList<>();
                for (Record rec : g.records()) {
                    recs.add(Map.of("partition_key", rec.partitionKey(), "data", b64(rec.data()),
                            "sequence_number", rec.sequenceNumber(),
                            "arrival_ms", rec.approximateArrivalTimestamp().toEpochMilli()));
                }
                emit("event", "records", "shard_id", s.shardId(), "records", recs,
                        "millis_behind_latest", g.millisBehindLatest(),
                        "has_next_iterator", g.nextShardIterator() != null);
            }
        }
        wire.report();
    }

    // ------------------------------------------------------------------- efo

    /** Trusts what the given trust manager trusts, and records the protocol
     *  each TLS handshake selected by ALPN (known once the server's
     *  certificate arrives, in TLS 1.2 and 1.3 alike). */
    static class AlpnRecorder extends X509ExtendedTrustManager {
        static final ConcurrentLinkedQueue<String> SEEN = new ConcurrentLinkedQueue<>();
        final X509ExtendedTrustManager inner;

        AlpnRecorder(X509ExtendedTrustManager inner) {
            this.inner = inner;
        }

        @Override
        public void checkServerTrusted(X509Certificate[] chain, String authType, SSLEngine engine)
                throws CertificateException {
            inner.checkServerTrusted(chain, authType, engine);
            SEEN.add(String.valueOf(engine.getHandshakeApplicationProtocol()));
        }

        @Override
        public void checkServerTrusted(X509Certificate[] chain, String authType, Socket socket)
                throws CertificateException {
            inner.checkServerTrusted(chain, authType, socket);
        }

        @Override
        public void checkServerTrusted(X509Certificate[] chain, String authType) throws CertificateException {
            inner.checkServerTrusted(chain, authType);
        }

        @Override
        public void checkClientTrusted(X509Certificate[] chain, String authType, SSLEngine engine)
                throws CertificateException {
            inner.checkClientTrusted(chain, authType, engine);
        }

        @Override
        public void checkClientTrusted(X509Certificate[] chain, String authType, Socket socket)
                throws CertificateException {
            inner.checkClientTrusted(chain, authType, socket);
        }

        @Override
        public void checkClientTrusted(X509Certificate[] chain, String authType) throws CertificateException {
            inner.checkClientTrusted(chain, authType);
        }

        @Override
        public X509Certificate[] getAcceptedIssuers() {
            return inner.getAcceptedIssuers();
        }
    }

    static void efo(String endpoint, String stream, String trustStore, int count) throws Exception {
        WireLog wire = new WireLog();
        NettyNioAsyncHttpClient.Builder http = NettyNioAsyncHttpClient.builder()
                .protocol(Protocol.HTTP2)
                .connectionTimeout(Duration.ofSeconds(5));
        if (endpoint.startsWith("https:")) {
            KeyStore ks = KeyStore.getInstance("PKCS12");
            try (FileInputStream in = new FileInputStream(trustStore)) {
                ks.load(in, "changeit".toCharArray());
            }
            TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            tmf.init(ks);
            X509ExtendedTrustManager trust = (X509ExtendedTrustManager) tmf.getTrustManagers()[0];
            http.tlsTrustManagersProvider(() -> new TrustManager[] {new AlpnRecorder(trust)})
                    .protocolNegotiation(ProtocolNegotiation.ALPN);
        }
        try (KinesisAsyncClient k = KinesisAsyncClient.builder()
                .endpointOverride(URI.create(endpoint))
                .region(Region.US_EAST_1)
                .credentialsProvider(CREDS)
                .httpClientBuilder(http)
                .overrideConfiguration(c -> c.addExecutionInterceptor(wire))
                .build()) {
            String streamArn = k.describeStreamSummary(r -> r.streamName(stream)).get(20, TimeUnit.SECONDS)
                    .streamDescriptionSummary().streamARN();
            String shardId = k.listShards(r -> r.streamName(stream)).get(20, TimeUnit.SECONDS)
                    .shards().get(0).shardId();
            Consumer c = k.registerStreamConsumer(r -> r.streamARN(streamArn).consumerName("java-efo"))
                    .get(20, TimeUnit.SECONDS).consumer();
            long deadline = System.currentTimeMillis() + 20_000;
            String status = c.consumerStatusAsString();
            while (!"ACTIVE".equals(status) && System.currentTimeMillis() < deadline) {
                Thread.sleep(100);
                status = k.describeStreamConsumer(r -> r.consumerARN(c.consumerARN()))
                        .get(20, TimeUnit.SECONDS).consumerDescription().consumerStatusAsString();
            }
            emit("event", "consumer", "status", status, "consumer_arn", c.consumerARN());

            AtomicBoolean cancelled = new AtomicBoolean();
            CountDownLatch subscribed = new CountDownLatch(1);
            CountDownLatch done = new CountDownLatch(count);
            ConcurrentLinkedQueue<Object> received = new ConcurrentLinkedQueue<>();
            ConcurrentLinkedQueue<Object> events = new ConcurrentLinkedQueue<>();
            SubscribeToShardResponseHandler handler = SubscribeToShardResponseHandler.builder()
                    .onResponse(r -> subscribed.countDown())
                    .onError(t -> { if (!cancelled.get()) emit("event", "subscription_error", "error", t.toString()); })
                    .subscriber(SubscribeToShardResponseHandler.Visitor.builder()
                            .onSubscribeToShardEvent(ev -> {
                                events.add(Map.of("records", ev.records().size(),
                                        "millis_behind_latest", ev.millisBehindLatest(),
                                        "continuation_sequence_number", String.valueOf(ev.continuationSequenceNumber())));
                                for (Record rec : ev.records()) {
                                    received.add(Map.of("partition_key", rec.partitionKey(),
                                            "data", b64(rec.data()), "sequence_number", rec.sequenceNumber()));
                                    done.countDown();
                                }
                            })
                            .build())
                    .build();
            CompletableFuture<Void> sub = k.subscribeToShard(r -> r.consumerARN(c.consumerARN()).shardId(shardId)
                    .startingPosition(p -> p.type(ShardIteratorType.LATEST)), handler);
            if (!subscribed.await(20, TimeUnit.SECONDS)) {
                emit("event", "error", "error", "no event stream within 20 s");
                return;
            }
            emit("event", "subscribed", "shard_id", shardId);

            List<Object> puts = new ArrayList<>();
            for (int i = 0; i < count; i++) {
                byte[] data = ("efo-" + i + "-\u00e9\u0000\u00ff").getBytes(StandardCharsets.UTF_8);
                int n = i;
                PutRecordResponse p = k.putRecord(r -> r.streamName(stream).partitionKey("pk-" + n)
                        .data(SdkBytes.fromByteArray(data))).get(20, TimeUnit.SECONDS);
                puts.add(Map.of("partition_key", "pk-" + i, "data", Base64.getEncoder().encodeToString(data),
                        "sequence_number", p.sequenceNumber(), "shard_id", p.shardId()));
            }
            emit("event", "put", "records", puts);
            boolean all = done.await(20, TimeUnit.SECONDS);
            cancelled.set(true);
            sub.cancel(true);
            emit("event", "received", "complete", all, "records", new ArrayList<>(received),
                    "events", new ArrayList<>(events));
        }
        wire.report();
        emit("event", "tls", "alpn", new ArrayList<>(AlpnRecorder.SEEN));
    }

    public static void main(String[] args) throws Exception {
        emit("event", "start", "java", System.getProperty("java.version"),
                "sdk", software.amazon.awssdk.core.util.VersionInfo.SDK_VERSION);
        switch (args[0]) {
            case "sync":
                sync(args[1], args[2]);
                break;
            case "efo":
                efo(args[1], args[2], args[3], Integer.parseInt(args[4]));
                break;
            default:
                throw new IllegalArgumentException(args[0]);
        }
        emit("event", "end");
        System.exit(0);
    }
}
