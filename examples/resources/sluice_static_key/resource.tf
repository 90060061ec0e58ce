resource "sluice_static_key" "example" {
  gateway_id = sluice_gateway.example.id
  name       = "records"
  value      = "0001020304050607080910111213141516171819202122232425262728293031" # 32 bytes, hex
}
