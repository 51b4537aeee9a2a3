// The Java client as users run it: Kafka's own KafkaProducer with its default partitioner.
// Reads "key<TAB>value" lines on stdin, sends each to the topic, and prints
// "key<TAB>partition<TAB>offset" for each once the broker has it.
// Run: java -cp '<kafka libs>/*' JavaProducer.java <bootstrap servers> <topic>

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.Future;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class JavaProducer {
    public static void main(String[] args) throws Exception {
        Properties config = new Properties();
        config.put("bootstrap.servers", args[0]);
        config.put("key.serializer", ByteArraySerializer.class.getName());
        config.put("value.serializer", ByteArraySerializer.class.getName());
        config.put("acks", "all");
        config.put("linger.ms", "5");
        List<String> keys = new ArrayList<>();
        List<Future<RecordMetadata>> sent = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(config);
             BufferedReader in = new BufferedReader(
                 new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
            String line;
            while ((line = in.readLine()) != null) {
                int tab = line.indexOf('\t');
                String key = line.substring(0, tab);
                byte[] value = line.substring(tab + 1).getBytes(StandardCharsets.UTF_8);
                keys.add(key);
                sent.add(producer.send(new ProducerRecord<>(
                    args[1], key.getBytes(StandardCharsets.UTF_8), value)));
            }
            producer.flush();
            for (int i = 0; i < sent.size(); i++) {
                RecordMetadata placed = sent.get(i).get();
                System.out.println(keys.get(i) + "\t" + placed.partition() + "\t" + placed.offset());
            }
        }
    }
}
