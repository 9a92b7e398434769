#include "sdk/credentials.h"

#include <openssl/crypto.h>

#include "auth/x509_batch/pem.h"

namespace tcpcrypt::sdk {

Source CaSource(const ClientOptions& o) {
  return {"ClientOptions::ca_file", o.ca_file, "ClientOptions::ca_pem", o.ca_pem};
}
Source ClientCertSource(const ClientOptions& o) {
  return {"ClientOptions::client_cert_file", o.client_cert_file,
          "ClientOptions::client_cert_pem", o.client_cert_pem};
}
Source ClientKeySource(const ClientOptions& o) {
  return {"ClientOptions::client_key_file", o.client_key_file, "ClientOptions::client_key_pem",
          o.client_key_pem};
}
Source CertSource(const ServerOptions& o) {
  return {"ServerOptions::cert_file", o.cert_file, "ServerOptions::cert_pem", o.cert_pem};
}
Source KeySource(const ServerOptions& o) {
  return {"ServerOptions::key_file", o.key_file, "ServerOptions::key_pem", o.key_pem};
}
Source ClientCaSource(const ServerOptions& o) {
  return {"ServerOptions::client_ca_file", o.client_ca_file, "ServerOptions::client_ca_pem",
          o.client_ca_pem};
}

namespace {

Status CheckOne(const Source& s) {
  if (!s.path.empty() && !s.memory.empty()) {
    return Status(StatusCode::kInvalidArgument,
                  std::string(s.path_field) + " and " + std::string(s.memory_field) +
                      " are both set: give the item as a path or in memory, not both");
  }
  return Status();
}

Status Invalid(std::string error) { return Status(StatusCode::kInvalidArgument, std::move(error)); }

void Wipe(std::string* s) {
  if (!s->empty()) OPENSSL_cleanse(s->data(), s->size());
  s->clear();
  s->shrink_to_fit();
}

}  // namespace

Status CheckSources(const ClientOptions& o) {
  for (const Source& s : {CaSource(o), ClientCertSource(o), ClientKeySource(o)}) {
    if (Status st = CheckOne(s); !st.ok()) return st;
  }
  return Status();
}

Status CheckSources(const ServerOptions& o) {
  for (const Source& s : {CertSource(o), KeySource(o), ClientCaSource(o)}) {
    if (Status st = CheckOne(s); !st.ok()) return st;
  }
  return Status();
}

Status LoadChain(const Source& s, std::vector<std::vector<uint8_t>>* out_chain_der) {
  if (Status st = CheckOne(s); !st.ok()) return st;
  std::string error;
  const bool ok = s.memory.empty()
                      ? auth::x509::LoadCertificateChainPem(s.path, out_chain_der, &error)
                      : auth::x509::ParseCertificatesPemOrDer(
                            s.memory, std::string(s.memory_field), out_chain_der, &error);
  if (!ok) return Invalid(std::move(error));
  return Status();
}

StatusOr<auth::x509::SharedEvpPkey> LoadKey(const Source& s) {
  if (Status st = CheckOne(s); !st.ok()) return st;
  std::string error;
  auth::x509::SharedEvpPkey key =
      s.memory.empty()
          ? auth::x509::LoadPrivateKeyPem(s.path, &error)
          : auth::x509::ParsePrivateKeyPemOrDer(s.memory, std::string(s.memory_field), &error);
  if (key == nullptr) return Invalid(std::move(error));
  return key;
}

StatusOr<auth::x509::SharedX509Store> LoadTrust(const Source& s) {
  if (Status st = CheckOne(s); !st.ok()) return st;
  std::string error;
  auth::x509::SharedX509Store store =
      s.memory.empty()
          ? auth::x509::LoadCaBundlePem(s.path, &error)
          : auth::x509::ParseCaBundlePemOrDer(s.memory, std::string(s.memory_field), &error);
  if (store == nullptr) return Invalid(std::move(error));
  return store;
}

void WipeKeys(ClientOptions* o) { Wipe(&o->client_key_pem); }
void WipeKeys(ServerOptions* o) { Wipe(&o->key_pem); }

}  // namespace tcpcrypt::sdk
