require 'net/http'
require 'json'
key = File.read('/run/secrets/inventory_key').strip
uri = URI('https://inventory.example.com/api/items')
req = Net::HTTP::Get.new(uri, 'Authorization' => "Bearer #{key}")
res = Net::HTTP.start(uri.host, uri.port, use_ssl: true) { |h| h.request(req) }
puts JSON.parse(res.body).length
